"""Runs the matrix: each cell as the app's own train + evaluate subprocesses (``cellrun.py``),
several at a time — on this machine, spread over its GPUs when it has some, or as tasks on a Ray
cluster (``executors.py``, ``ray_exec.py``); this loop is the same for both.

Resumability comes from the apps: re-running ``train`` on an existing run directory resumes it
(or finds it finished), so a killed comparison simply runs its unfinished cells again. A cell
counts as complete when its ``eval.json`` carries the cell's final step; those are skipped.
"""

from __future__ import annotations

import statistics
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import Callable, Sequence

from apps.compare.cellrun import Outcome
from apps.compare.executors import Executor, LocalExecutor
from apps.compare.matrix import Cell
from apps.compare.placement import next_startable, primed_at_start
from apps.compare.procs import RunLock, terminate_as_exit
from common.appspec import get_app


HEARTBEAT_S = 60.0


def fmt_duration(seconds: float) -> str:
    """``75`` → ``1m15s``; ``4000`` → ``1h06m`` (rounded down to the minute)."""
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


class Estimator:
    """Seconds per cell, per study: the preset's guess until cells have been measured."""

    def __init__(self, guesses: dict[str, float], cells: Sequence[Cell], key: str = "wall_s"):
        """``key``: the cell.json time that a cell to run will take (``eval_s`` to re-evaluate)."""
        self.guesses = dict(guesses)
        self.measured: dict[str, list[float]] = {}
        for c in cells:
            rec = c.bookkeeping()
            if rec and rec.get("returncode") == 0 and not rec.get("resumed") and c.is_complete():
                self.add(c.study, float(rec.get(key) or 0.0))

    def add(self, study: str, seconds: float) -> None:
        if seconds > 0:
            self.measured.setdefault(study, []).append(seconds)

    def per_cell(self, study: str) -> float:
        got = self.measured.get(study)
        return statistics.median(got) if got else self.guesses.get(study, 60.0)

    def source(self, study: str) -> str:
        n = len(self.measured.get(study, []))
        return f"measured on {n} cell{'s' * (n != 1)}" if n else "preset estimate"

    def left(self, pending: Sequence[Cell], running: dict[Cell, float], jobs: int) -> float:
        now = time.time()
        work = sum(self.per_cell(c.study) for c in pending)
        rest = [max(0.0, self.per_cell(c.study) - (now - t0)) for c, t0 in running.items()]
        slots = max(1, min(jobs, len(pending) + len(running)))
        return max(max(rest, default=0.0), (work + sum(rest)) / slots)


def run_matrix(
    cells: Sequence[Cell],
    root: Path,
    guesses: dict[str, float],
    jobs: int,
    threads: int = 1,
    say: Callable[[str], None] | None = None,
    python: str = sys.executable,
    reevaluate: bool = False,
    on_done: Callable[[Cell], None] | None = None,
    executor: Executor | None = None,
) -> list[Outcome]:
    """Run every incomplete cell, ``jobs`` at a time; returns the outcomes of those run.

    The first cell of a study runs before its siblings start, so per-dataset caches (a trained
    feature extractor, a generated corpus) are built once instead of by several processes racing.
    ``reevaluate``: evaluate the complete cells again as well (without retraining them).
    ``on_done(cell)`` is called as each cell completes (e.g. to export its records at once, so
    a long matrix cut short still leaves every finished cell's evidence behind).
    ``executor``: where the cells run (default: this machine's CPUs, ``jobs`` at a time, with
    ``python``); it is started only when there is a cell to run.
    """
    say = say or _print
    ex = executor if executor is not None else LocalExecutor(jobs, threads, python)
    again = [c for c in cells if reevaluate and c.is_complete()]
    todo = [c for c in cells if not c.is_complete()] + again
    done_before = len(cells) - len(todo)
    est = Estimator(guesses, cells)
    if again and len(again) == len(todo):  # only re-evaluations: they take an evaluation's time
        est = Estimator({k: v / 4 for k, v in guesses.items()}, cells, key="eval_s")
    studies = sorted({c.study for c in cells})
    n_var = {s: len({c.variant for c in cells if c.study == s}) for s in studies}
    n_seed = len({c.seed for c in cells})
    shape = " + ".join(f"{s}: {n_var[s]} variants" for s in studies)
    say(f"matrix: {len(cells)} cells ({shape}; × {n_seed} seeds) — {done_before} complete, "
        f"{len(todo)} to run{f' ({len(again)} only to evaluate again)' if again else ''}, "
        f"{ex.describe(jobs, threads)}")
    if not todo:
        return []

    primed = primed_at_start(cells, lambda c: c.study, lambda c: c.is_complete() and not reevaluate,
                             lambda c: get_app(c.app).shares_disk_cache)
    evaluate_only = {id(c) for c in again}
    pending = list(todo)
    running: dict[Future, Cell] = {}
    started: dict[Cell, float] = {}
    outcomes: list[Outcome] = []
    finished = done_before
    last_beat = time.time()
    # SIGTERM is turned into an exit after the executor has started: Ray installs its own handler
    with RunLock(root) as lock, ex.session(lock) as jobs, terminate_as_exit():
        per = ", ".join(f"{s} ≈ {fmt_duration(est.per_cell(s))}/cell ({est.source(s)})" for s in studies)
        say(f"estimated time: {fmt_duration(est.left(todo, {}, jobs))} ({per})")
        try:
            while pending or running:
                while len(running) < jobs:
                    nxt = next_startable(pending, {c.study for c in running.values()}, primed, lambda c: c.study)
                    if nxt is None:
                        break
                    pending.remove(nxt)
                    started[nxt] = time.time()
                    fut, where = ex.submit(nxt, id(nxt) in evaluate_only)
                    running[fut] = nxt
                    left = est.left(pending, {c: started[c] for c in running.values()}, jobs)
                    say(f"[start] {nxt.key}{f' → {where}' if where else ''}  ({len(running)} running, "
                        f"{len(pending)} queued, ~{fmt_duration(left)} left)")
                done, _ = wait(list(running), timeout=HEARTBEAT_S, return_when=FIRST_COMPLETED)
                for fut in done:
                    cell = running.pop(fut)
                    out = ex.finish(fut)
                    outcomes.append(out)
                    primed.add(cell.study)
                    started.pop(cell, None)
                    finished += 1
                    if out.ok and not out.resumed and id(cell) not in evaluate_only:
                        est.add(cell.study, out.wall_s)
                    if out.ok and on_done is not None:
                        on_done(cell)
                    left = est.left(pending, {c: started[c] for c in running.values()}, jobs)
                    if out.ok:
                        say(f"[done {finished}/{len(cells)}] {cell.key} in {fmt_duration(out.wall_s)}"
                            f"{_headline(cell)} — ~{fmt_duration(left)} left")
                    elif out.error:
                        say(f"[FAILED {finished}/{len(cells)}] {cell.key}: {out.error}")
                    else:
                        log = cell.dir / ("train.log" if out.stage == "train" else "eval.log")
                        say(f"[FAILED {finished}/{len(cells)}] {cell.key}: {out.stage} exited {out.returncode}; "
                            f"log: {log}")
                        for line in _tail(log, 6):
                            say(f"    | {line}")
                if not done and time.time() - last_beat >= HEARTBEAT_S:
                    left = est.left(pending, {c: started[c] for c in running.values()}, jobs)
                    names = ", ".join(f"{c.key} ({fmt_duration(time.time() - started[c])})" for c in running.values())
                    say(f"[running] {names} — ~{fmt_duration(left)} left")
                if done or time.time() - last_beat >= HEARTBEAT_S:
                    last_beat = time.time()
        except BaseException:
            ex.stop()
            raise
    return outcomes


def _print(message: str) -> None:
    print(message, flush=True)  # progress must reach a log file as it happens, not when a buffer fills


def _headline(cell: Cell) -> str:
    """The cell's headline scores (its app's), for the progress line."""
    rec = cell.eval_record() or {}
    parts = []
    for key in (m.key for m in get_app(cell.app).headline):
        if isinstance(rec.get(key), (int, float)):
            parts.append(f"{key} {rec[key]:.4g}")
    return (": " + ", ".join(parts)) if parts else ""


def _tail(path: Path, n: int) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    # skip the runner's own "# <time> <command>" headers: the app's last words are what matter
    return [ln[-200:] for ln in lines if ln.strip() and not ln.startswith("# ")][-n:]
