"""Named random streams: every random draw of a run comes from (seed, purpose, indices).

Hand-mixed seeds such as ``seed * 1_000_003 + step * 7_919 + 17`` collide: for one seed, the data
order of epoch 17 and the noise of step 0 got the same generator. Here a stream is named by a
dotted *purpose* and a few non-negative integer *indices* (a step, an epoch, a block, a layer),
and its seed is derived by NumPy's ``SeedSequence`` from all of them, each field at a fixed width
(so no two different tuples share an input) and the purpose hashed with BLAKE2b (stable across
processes and Python versions, unlike ``hash()``). Distinct tuples give independent streams; the
same tuple gives the same numbers on any machine, which is what exact resume relies on.

Purposes in use (:data:`PURPOSES`; an unknown name is an error, so each stream is listed here):

=========================  ============  =====================================================
purpose                    indices       what it draws
=========================  ============  =====================================================
``gan.data.epoch``         epoch         the permutation of the training set for that epoch
``gan.noise``              step          the latent vectors of a training step's global batch
``gan.augment``            step          DiffAugment's translations at that step
``gan.sample``             block         sampling noise, in blocks of 256 samples (eval, CLI)
``gan.grid``               —             the seed of the training grid's sample stream
``gan.classifier.init``    —             the classifier extractor's initial weights
``gan.classifier.order``   —             its data order and shift augmentation
``gan.classifier.dropout`` step          its dropout masks at that step
``gan.eval.subset``        —             which real images the FID/KID reference uses
``gan.eval.kid``           —             KID's random subsets
``remedies.kick``          step, model   the thermal kick's noise
``remedies.redo``          step, model   ReDo's re-initialised weights
``translation.batches``    epoch         the shuffles that make an epoch's token batches
``theory.init``            claim, …      a theory claim's fresh initialisations (per draw)
``theory.remedy``          step          a theory remedy's kick / ReDo noise
=========================  ============  =====================================================

Deliberately fixed seeds (e.g. the held-out split's ``split_seed``, the standing BatchNorm
statistics' ``STAT_SEED``) and the global ``torch.manual_seed(seed)`` of
:func:`common.training.seed_everything` are not streams: they are documented where they live.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

PURPOSES: tuple[str, ...] = (
    "gan.data.epoch",
    "gan.noise",
    "gan.augment",
    "gan.sample",
    "gan.grid",
    "gan.classifier.init",
    "gan.classifier.order",
    "gan.classifier.dropout",
    "gan.eval.subset",
    "gan.eval.kid",
    "remedies.kick",
    "remedies.redo",
    "translation.batches",
    "theory.init",
    "theory.remedy",
)

_WORD = 2**32
_LIMIT = 2**64  # seeds and indices are encoded as a sign and two 32-bit words of magnitude


def _purpose_words(purpose: str) -> list[int]:
    """The purpose as four 32-bit words of its BLAKE2b-128 digest (stable, fixed width)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown RNG purpose {purpose!r}: add it to common.rng.PURPOSES (and its docstring)")
    digest = hashlib.blake2b(purpose.encode(), digest_size=16).digest()
    return [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]


def _words(value: int, what: str) -> list[int]:
    """``value`` at a fixed width: sign, low and high words of |value| (torch accepts negative seeds)."""
    value = int(value)
    if not -_LIMIT < value < _LIMIT:
        raise ValueError(f"RNG {what} must lie strictly between -2**64 and 2**64, got {value}")
    return [int(value < 0), abs(value) % _WORD, abs(value) // _WORD]


def seed_sequence(seed: int, purpose: str, *indices: int) -> np.random.SeedSequence:
    """The ``SeedSequence`` of stream (seed, purpose, indices)."""
    entropy = _purpose_words(purpose) + _words(seed, "seed") + [len(indices)]
    for i in indices:
        entropy += _words(i, "index")
    return np.random.SeedSequence(entropy)


def stream_seed(seed: int, purpose: str, *indices: int) -> int:
    """A 63-bit seed for stream (seed, purpose, indices), for APIs that take an int seed."""
    return int(seed_sequence(seed, purpose, *indices).generate_state(1, np.uint64)[0]) >> 1


def torch_generator(seed: int, purpose: str, *indices: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator on ``device`` seeded with :func:`stream_seed`."""
    return torch.Generator(device=device).manual_seed(stream_seed(seed, purpose, *indices))


def numpy_rng(seed: int, purpose: str, *indices: int) -> np.random.Generator:
    """A NumPy generator for stream (seed, purpose, indices)."""
    return np.random.default_rng(seed_sequence(seed, purpose, *indices))
