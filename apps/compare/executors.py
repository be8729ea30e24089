"""How the runner starts its cells: here, in threads that each drive a cell's processes (this
module), or as tasks on a Ray cluster (``ray_exec.py``). The runner's loop — which cell next,
progress, the time left, the lock, what a finished cell triggers — is the same for both.
"""

from __future__ import annotations

import sys
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import ContextManager, Iterator, Protocol

from apps.compare.cellrun import Outcome, run_cell
from apps.compare.matrix import Cell
from apps.compare.placement import Slot, SlotPool
from apps.compare.procs import Live, RunLock


def detect_gpus() -> int:
    """CUDA devices this process sees (0 without CUDA); torch is imported only now."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


class Executor(Protocol):
    """Starts cells and hands back their outcomes (:class:`LocalExecutor`, ``ray_exec.RayExecutor``)."""

    def describe(self, jobs: int, threads: int) -> str:
        """How the cells run, for the runner's first line (``2 in parallel, 1 thread(s) each``)."""
        ...

    def session(self, lock: RunLock) -> ContextManager[int]:
        """Ready to run cells while the block lasts (the comparison's lock is held); yields how
        many cells run at a time."""
        ...

    def submit(self, cell: Cell, evaluate_only: bool) -> tuple[Future, str]:
        """Start ``cell``; its future and where it runs in words ("" when there is nothing to say)."""
        ...

    def finish(self, fut: Future) -> Outcome:
        """The outcome of a done future; frees what the cell held."""
        ...

    def stop(self) -> None:
        """End every running cell now (an interrupt, an error): none is left running."""
        ...


class LocalExecutor:
    """Cells on this machine, ``jobs`` at a time, each in a thread that waits on its processes.

    With ``slots`` (a GPU machine) each cell takes a GPU slot when it starts and gives it back
    when it ends, and its processes see only that GPU. The processes are tracked in a
    :class:`Live`, whose pids go into the comparison's lock file, so that a later run can tell
    that cells of a comparison killed outright are still running.
    """

    def __init__(self, jobs: int, threads: int = 1, python: str = sys.executable, slots: SlotPool | None = None):
        self.jobs = min(jobs, slots.capacity) if slots is not None and slots.gpus else jobs
        self.threads, self.python = threads, python
        self.slots = slots if slots is not None and slots.gpus else None
        self.live = Live()
        self.pool: ThreadPoolExecutor | None = None
        self.held: dict[Future, Slot] = {}

    def describe(self, jobs: int, threads: int) -> str:
        text = f"{self.jobs} in parallel, {threads} thread(s) each"
        if self.slots is not None:
            text += f", on {self.slots.gpus} GPU(s) × {self.slots.per_gpu} cell(s) per GPU"
        return text

    @contextmanager
    def session(self, lock: RunLock) -> Iterator[int]:
        self.live.on_change = lock.write
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            self.pool = pool
            try:
                yield self.jobs
            finally:
                self.pool = None

    def submit(self, cell: Cell, evaluate_only: bool) -> tuple[Future, str]:
        assert self.pool is not None, "submit() outside session()"
        slot = self.slots.take() if self.slots is not None else None
        env, where = (slot.env(), slot.describe()) if slot is not None else ({}, "")
        fut = self.pool.submit(run_cell, cell, self.threads, self.live, self.python, evaluate_only, env, where)
        if slot is not None:
            self.held[fut] = slot
        return fut, where

    def finish(self, fut: Future) -> Outcome:
        slot = self.held.pop(fut, None)
        if slot is not None and self.slots is not None:
            self.slots.give_back(slot)
        return fut.result()

    def stop(self) -> None:
        self.live.terminate_all()
