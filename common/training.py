"""Pieces every training loop shares: the accelerator, seeding, and the divergence guard."""

from __future__ import annotations

import functools
import random
from typing import Any

import numpy as np
import torch

from common.errors import UserError


def make_accelerator(mixed_precision: str = "no", cpu: bool | None = None) -> Any:
    """An ``accelerate.Accelerator`` for this process (DDP when launched with several).

    ``cpu=None`` lets accelerate choose (GPU when present). fp16 needs a GPU; bf16 works on both
    (CPU autocast, or a GPU with bfloat16 support). Mixed precision is autocast: the parameters,
    optimizer states and checkpoints stay float32, so a bf16 run resumes from its own checkpoints
    (and from a float32 run's) like any other.
    """
    from accelerate import Accelerator  # imported here: importing accelerate is slow

    if mixed_precision not in ("no", "fp16", "bf16"):
        raise UserError(f"mixed_precision must be one of no, fp16, bf16 (got {mixed_precision!r})")
    on_gpu = not cpu and torch.cuda.is_available()
    if mixed_precision == "fp16" and not on_gpu:
        raise UserError("mixed_precision=fp16 needs a CUDA GPU; use bf16 or no on the CPU")
    if mixed_precision == "bf16" and on_gpu and not torch.cuda.is_bf16_supported():
        raise UserError("mixed_precision=bf16 needs a GPU with bfloat16 support; use fp16 or no on this GPU")
    kwargs: dict[str, Any] = {"mixed_precision": mixed_precision}
    if cpu is not None:
        kwargs["cpu"] = cpu
    _cache_lomo_check()
    _forget_finished_state(mixed_precision, cpu)
    return Accelerator(**kwargs)


def _forget_finished_state(mixed_precision: str, cpu: bool | None) -> None:
    """Let a later run in the same process use another precision or device than an earlier one.

    accelerate keeps one process-wide state, made by the first ``Accelerator``, and refuses
    ("restart your runtime") a second one whose ``mixed_precision`` or ``cpu`` differs — so a bf16
    run after a float32 run in one Python process (tests, a notebook) could not start. A
    single-process state belongs to a run that is over once the next one starts, so it is dropped
    then; a multi-process state (``accelerate launch``) is never touched: one launch, one setting.
    """
    from accelerate.state import AcceleratorState

    # private, but accelerate has no public way to ask "is there a state?" that does not make one
    if not AcceleratorState._shared_state:
        return
    state = AcceleratorState()
    if state.num_processes > 1:
        return
    other_device = bool(cpu) and state.device.type != "cpu"
    if other_device or state.mixed_precision != mixed_precision:
        AcceleratorState._reset_state(reset_partial_state=other_device)  # the device lives in PartialState


def _cache_lomo_check() -> None:
    """Make accelerate's per-step ``is_lomo_available()`` a cached answer.

    ``AcceleratedOptimizer.step`` (accelerate 1.x) asks twice per call whether the ``lomo_optim``
    package is installed, and each answer is an uncached ``importlib`` search of ``sys.path``:
    about 0.3 ms, or 4% of a small DCGAN step with two optimizers on a CPU core
    (``bench/gan_step.py``). Whether a package is installed cannot change during a run.
    """
    import accelerate.optimizer as acc_opt

    check = getattr(acc_opt, "is_lomo_available", None)  # absent in other accelerate versions
    if check is not None and not hasattr(check, "cache_info"):
        acc_opt.is_lomo_available = functools.cache(check)


def seed_everything(seed: int) -> None:
    """Seed torch (all devices), NumPy and Python's ``random``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class DivergenceGuard:
    """Notices a NaN/Inf loss without a host sync per step.

    ``update(loss)`` folds the loss's finiteness into a device-side flag (no sync); ``check(step)``
    reads that flag — one sync — and is meant to be called every ``every`` steps and before each
    checkpoint, so a diverged model is never saved.
    """

    def __init__(self, every: int = 50):
        self.every = max(1, int(every))
        self._ok: torch.Tensor | None = None
        self._first_bad: int | None = None

    def update(self, *losses: torch.Tensor) -> None:
        for loss in losses:
            finite = torch.isfinite(loss.detach()).all()
            self._ok = finite if self._ok is None else self._ok & finite

    def due(self, step: int) -> bool:
        return step % self.every == 0

    def check(self, step: int, last_good: str | None) -> None:
        """Raise a UserError naming the step window and the last good checkpoint if diverged."""
        if self._ok is None:
            return
        ok = bool(self._ok.item())  # the one host sync
        self._ok = None
        if not ok:
            where = f"the last good checkpoint is '{last_good}'" if last_good else "no checkpoint was written yet"
            raise UserError(
                f"training diverged: a loss became NaN/Inf at or before step {step}; {where} "
                "(lower the learning rate or enable gradient clipping, then re-run)"
            )
