"""Where each cell of the matrix runs: which GPU, which slot on it, how many at a time.

Pure bookkeeping, no CUDA: everything here takes a device count, so it is the same code on a
machine with eight GPUs and in a test on a laptop. The runner asks a :class:`SlotPool` for a slot
when it starts a cell and gives the slot back when the cell ends; the cell's processes see only
their GPU (``CUDA_VISIBLE_DEVICES``), so an app that trains "on the GPU" trains on its own one.

Several cells may share one GPU (``cells_per_gpu``): small models leave most of a GPU idle, and
two or three of them on one device finish sooner than one after another. The number of cells at
a time is capped so nothing is oversubscribed: by the GPU slots and by the cores (each cell has
``threads`` of them).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Slot:
    """A place for one cell: a GPU and a position on it, or the CPU (``gpu`` None)."""

    gpu: int | None  # index among the devices this runner may use; None: no GPU
    device: str | None  # what the cell's CUDA_VISIBLE_DEVICES holds (the parent's name of that GPU)
    index: int  # 1-based position on the GPU
    per_gpu: int
    threads: int

    def env(self) -> dict[str, str]:
        """Environment a cell in this slot gets on top of its own (nothing on the CPU)."""
        return {} if self.device is None else {"CUDA_VISIBLE_DEVICES": self.device}

    def describe(self) -> str:
        """``GPU 1 (slot 2/2), 4 threads`` — as the dry run and the progress lines say it."""
        threads = f"{self.threads} thread{'s' * (self.threads != 1)}"
        if self.gpu is None:
            return f"CPU, {threads}"
        return f"GPU {self.gpu} (slot {self.index}/{self.per_gpu}), {threads}"


def device_ids(count: int, visible: str | None = None) -> list[str]:
    """The names of the ``count`` GPUs this process sees, as a child's ``CUDA_VISIBLE_DEVICES``
    must give them: a parent restricted to ``CUDA_VISIBLE_DEVICES=2,3`` owns devices "2" and
    "3", not "0" and "1" (names may also be ``GPU-<uuid>``)."""
    names = [n.strip() for n in (visible or "").split(",") if n.strip()]
    if len(names) >= count:
        return names[:count]
    return [str(i) for i in range(count)]


def cells_at_a_time(jobs: int, cores: int, threads: int, gpus: int, cells_per_gpu: int) -> tuple[int, str]:
    """How many cells run at once, and why when the preset's ``jobs`` was lowered.

    Without GPUs this is the runner's rule as it always was: ``jobs``, or one cell per
    ``threads`` cores when ``jobs`` is 0. With GPUs it is also capped by the GPU slots
    (``gpus × cells_per_gpu``) and by the cores, so that no GPU and no core is oversubscribed.
    """
    by_cores = max(1, cores // max(1, threads))
    if gpus <= 0:
        return (jobs or by_cores), ""
    by_gpus = gpus * cells_per_gpu
    cap = min(by_cores, by_gpus)
    if jobs and jobs <= cap:
        return jobs, ""
    why = (f"{gpus} GPU{'s' * (gpus != 1)} × {cells_per_gpu} cell{'s' * (cells_per_gpu != 1)} each"
           if by_gpus <= by_cores else f"{cores} cores / {threads} thread{'s' * (threads != 1)} per cell")
    return cap, (f"jobs={jobs} lowered to {cap} ({why})" if jobs else "")


def cluster_capacity(nodes: Sequence[tuple[float, float]], threads: int, cells_per_gpu: int) -> int:
    """Cells a cluster runs at once: per node (its CPUs, its GPUs), the cells that fit its cores
    and, where the cluster has GPUs, its GPU slots; summed over the nodes."""
    with_gpus = any(g > 0 for _, g in nodes)
    total = 0
    for cpus, gpus in nodes:
        fit = int(cpus // threads)
        if with_gpus:
            fit = min(fit, int(gpus * cells_per_gpu + 1e-6))
        total += fit
    return total


class SlotPool:
    """The GPU slots of this machine: ``gpus × cells_per_gpu`` of them.

    A cell takes a slot on the GPU with the fewest cells (the lowest-numbered among equals), so
    cells spread over the GPUs before any GPU takes a second one; a finished cell's slot is free
    again at once.
    """

    def __init__(self, gpus: int, cells_per_gpu: int = 1, threads: int = 1, devices: Sequence[str] | None = None):
        if gpus < 0 or cells_per_gpu < 1 or threads < 1:
            raise ValueError(f"gpus={gpus}, cells_per_gpu={cells_per_gpu}, threads={threads}")
        self.gpus, self.per_gpu, self.threads = gpus, cells_per_gpu, threads
        self.devices = list(devices) if devices is not None else [str(i) for i in range(gpus)]
        if len(self.devices) != gpus:
            raise ValueError(f"{gpus} GPUs but devices {self.devices}")
        self.taken: list[set[int]] = [set() for _ in range(gpus)]

    @property
    def capacity(self) -> int:
        return self.gpus * self.per_gpu

    @property
    def in_use(self) -> int:
        return sum(len(t) for t in self.taken)

    def take(self) -> Slot:
        """A free slot; a RuntimeError when all are taken (the caller starts no more cells than
        :attr:`capacity`, so that is a bug)."""
        if not self.gpus:
            return Slot(None, None, 1, 1, self.threads)
        free = [g for g in range(self.gpus) if len(self.taken[g]) < self.per_gpu]
        if not free:
            raise RuntimeError(f"all {self.capacity} GPU slots are taken")
        gpu = min(free, key=lambda g: (len(self.taken[g]), g))
        index = min(set(range(1, self.per_gpu + 1)) - self.taken[gpu])
        self.taken[gpu].add(index)
        return Slot(gpu, self.devices[gpu], index, self.per_gpu, self.threads)

    def give_back(self, slot: Slot) -> None:
        """Free ``slot`` (a CPU slot is nothing to free)."""
        if slot.gpu is None:
            return
        if slot.index not in self.taken[slot.gpu]:
            raise RuntimeError(f"slot {slot.describe()} was not taken")
        self.taken[slot.gpu].discard(slot.index)


def primed_at_start(cells: Sequence[T], study: Callable[[T], str], complete: Callable[[T], bool],
                    shares_cache: Callable[[T], bool]) -> set[str]:
    """The studies whose cells may start together at once: a cell of theirs is already complete,
    or their app builds no per-dataset cache on disk that a first cell must finish alone."""
    return {study(c) for c in cells if complete(c) or not shares_cache(c)}


def next_startable(pending: Sequence[T], busy: set[str], primed: set[str], study: Callable[[T], str]) -> T | None:
    """The next cell to start: the first pending one whose study is primed (a cell of it has
    finished, or see :func:`primed_at_start`) or has no cell running. The first cell of a study
    thus runs before its siblings, so per-dataset caches (a trained feature extractor) are built
    once instead of by several processes racing."""
    return next((c for c in pending if study(c) in primed or study(c) not in busy), None)


def plan(cells: Sequence[T], seconds: Callable[[T], float], study: Callable[[T], str], pool: SlotPool,
         jobs: int, primed: set[str] = frozenset()) -> list[tuple[T, Slot]]:
    """Where each cell would run, simulating the runner with every cell taking ``seconds(cell)``
    (its study's estimate): the dry run's listing. In a real run cells take the first slot that
    frees, so a cell that runs long or short shifts the later ones; the packing is the same."""
    jobs = min(jobs, pool.capacity) if pool.gpus else jobs
    pending, primed = list(cells), set(primed)
    running: list[tuple[float, int, T, Slot]] = []  # (finish time, start order, cell, slot)
    out: list[tuple[T, Slot]] = []
    now, order = 0.0, 0
    while pending or running:
        while len(running) < jobs:
            nxt = next_startable(pending, {study(c) for _, _, c, _ in running}, primed, study)
            if nxt is None:
                break
            pending.remove(nxt)
            slot = pool.take()
            out.append((nxt, slot))
            heapq.heappush(running, (now + max(0.0, seconds(nxt)), order, nxt, slot))
            order += 1
        now, _, done, slot = heapq.heappop(running)
        pool.give_back(slot)
        primed.add(study(done))
    return out


def describe_pool(pool: SlotPool, jobs: int, cores: int) -> str:
    """One line: the GPUs, the slots, the threads and how many cells run at once."""
    return (f"placement: {pool.gpus} GPU{'s' * (pool.gpus != 1)} × {pool.per_gpu} cell{'s' * (pool.per_gpu != 1)} "
            f"each, {pool.threads} thread{'s' * (pool.threads != 1)} per cell on {cores} cores → {jobs} "
            f"cell{'s' * (jobs != 1)} at a time")


def env_prefix(env: Mapping[str, str]) -> str:
    """``CUDA_VISIBLE_DEVICES=1 `` — a slot's environment as the start of a shell command."""
    return "".join(f"{k}={v} " for k, v in env.items())
