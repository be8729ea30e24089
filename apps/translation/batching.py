"""Length-bucketed token batches whose content at step ``s`` is a pure function of (seed, s).

Each epoch shuffles the training pairs with a generator seeded by (seed, epoch), stably sorts
them by length (so equal lengths end up in random order), packs neighbours into batches of at
most ``max_tokens`` padded tokens (source + target), and shuffles the batch order. Resuming at
step ``s`` therefore needs no loader state: walk the epochs' batch counts to find ``s``. Every
process computes the same global batch and takes its own shard (``rank::world``), so a run can
resume on a different number of processes with the same global batches.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from common.rng import numpy_rng

# A batch always holds at least this many pairs (unless the corpus is smaller), so two or more
# processes rarely see an empty shard; the training loop handles one if it happens.
MIN_PAIRS = 8


class TokenBatcher:
    """Global batches of pair indices for any step; see the module docstring."""

    def __init__(self, src_lens: Sequence[int], tgt_lens: Sequence[int], max_tokens: int, seed: int):
        self.src = np.asarray(src_lens, dtype=np.int64)
        self.tgt = np.asarray(tgt_lens, dtype=np.int64)
        if len(self.src) == 0:
            raise ValueError("no training pairs to batch")
        self.max_tokens, self.seed = int(max_tokens), int(seed)
        self._cache: dict[int, list[np.ndarray]] = {}
        self._counts: list[int] = []  # batches in epochs 0, 1, ...

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """All batches of ``epoch`` in the order they are trained."""
        if epoch not in self._cache:
            if len(self._cache) > 2:  # keep the current epoch and its neighbour
                self._cache.pop(min(self._cache))
            self._cache[epoch] = self._make(epoch)
        return self._cache[epoch]

    def _make(self, epoch: int) -> list[np.ndarray]:
        rng = numpy_rng(self.seed, "translation.batches", epoch)
        perm = rng.permutation(len(self.src))
        key = np.maximum(self.src[perm], self.tgt[perm])
        order = perm[np.argsort(key, kind="stable")]
        batches, start = [], 0
        n = len(order)
        while start < n:
            end, max_s, max_t = start, 0, 0
            while end < n:
                s, t = max(max_s, self.src[order[end]]), max(max_t, self.tgt[order[end]])
                if (end + 1 - start) * (s + t) > self.max_tokens and end - start >= MIN_PAIRS:
                    break
                max_s, max_t, end = s, t, end + 1
            batches.append(order[start:end])
            start = end
        return [batches[i] for i in rng.permutation(len(batches))]

    def locate(self, step: int) -> tuple[int, int]:
        """(epoch, index within the epoch) of global step ``step`` (0-based)."""
        epoch, remaining = 0, step
        while True:
            while len(self._counts) <= epoch:
                self._counts.append(len(self._make(len(self._counts))) if len(self._counts) not in self._cache
                                    else len(self._cache[len(self._counts)]))
            if remaining < self._counts[epoch]:
                return epoch, remaining
            remaining -= self._counts[epoch]
            epoch += 1

    def batch(self, step: int) -> tuple[int, np.ndarray]:
        """(epoch, pair indices) of the global batch trained at step ``step``."""
        epoch, i = self.locate(step)
        return epoch, self.epoch_batches(epoch)[i]


def shard(indices: np.ndarray, rank: int, world: int) -> np.ndarray:
    """This process's part of a global batch (interleaved, so lengths stay balanced)."""
    return indices[rank::world]
