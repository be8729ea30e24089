"""Runs the matrix: each cell as the app's own train + evaluate subprocesses, in parallel.

Why subprocesses: a cell is then exactly what a user would run by hand (the report prints the
command), one crashing cell cannot take the others down, and each process gets its own thread
budget (OMP_NUM_THREADS) so parallel cells do not fight over the cores.

Resumability comes from the apps: re-running ``train`` on an existing run directory resumes it
(or finds it finished), so a killed comparison simply runs its unfinished cells again. A cell
counts as complete when its ``eval.json`` carries the cell's final step; those are skipped.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

from apps.compare.environment import git_state
from apps.compare.matrix import CELL_FILE, Cell
from apps.compare.procs import Live, RunLock, cell_env, run_logged, terminate_as_exit
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


@dataclass
class Outcome:
    """What running one cell did."""

    cell: Cell
    ok: bool
    wall_s: float
    stage: str = ""  # "train" or "evaluate" when it failed
    returncode: int = 0
    resumed: bool = False  # the run directory existed: wall_s is only the rest of the work


def run_cell(cell: Cell, threads: int = 1, live: Live | None = None, python: str = sys.executable,
             evaluate_only: bool = False) -> Outcome:
    """Train (or resume) then evaluate one cell; logs and ``cell.json`` go in the cell folder.

    ``evaluate_only`` re-runs just the evaluation of a trained cell (the app's evaluation has
    changed, or the preset's ``eval_args``); the training figures of ``cell.json`` are kept.
    ``cell.json`` also names the code: the git commit (and whether tracked files differed from
    it) when the cell started; a re-evaluation keeps the training's as ``train_commit``.
    """
    live = live or Live()
    code = git_state()
    cell.dir.mkdir(parents=True, exist_ok=True)
    env = cell_env(threads)
    old = cell.bookkeeping() or {}
    resumed = cell.run_dir.exists() if not evaluate_only else bool(old.get("resumed"))
    t0 = time.time()
    if evaluate_only:
        rc, train_cpu = 0, old.get("train_cpu_s")
    else:
        rc, train_cpu = run_logged(cell.train_argv(python), cell.dir / "train.log", env, live)
    t1 = time.time()
    train_s = old.get("train_s", 0.0) if evaluate_only else t1 - t0
    eval_s, eval_cpu, stage = 0.0, None, ""
    if rc != 0:
        stage = "train"
    else:
        rc, eval_cpu = run_logged(cell.eval_argv(python), cell.dir / "eval.log", env, live)
        eval_s = time.time() - t1
        if rc != 0:
            stage = "evaluate"
        elif not cell.is_complete(ignore_bookkeeping=True):
            stage, rc = "evaluate", 1  # exit 0 but no eval.json at the final step: not done
    wall = time.time() - t0
    record = {
        "study": cell.study, "app": cell.app, "variant": cell.variant, "seed": cell.seed,
        "steps": cell.steps, "eval_args": list(cell.eval_args), "commands": cell.commands(threads),
        "train_s": round(train_s, 3), "eval_s": round(eval_s, 3), "wall_s": round(train_s + eval_s, 3),
        "resumed": resumed, "train_cpu_s": None if train_cpu is None else round(train_cpu, 3),
        "eval_cpu_s": None if eval_cpu is None else round(eval_cpu, 3),
        "returncode": rc, "failed_stage": stage or None, "threads": threads,
        "commit": code["commit"], "dirty": code["dirty"],
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if evaluate_only:
        record["train_commit"] = old.get("train_commit", old.get("commit"))
        record["train_dirty"] = old.get("train_dirty", old.get("dirty"))
    if not live.stopping:  # an interrupted cell is neither done nor failed
        (cell.dir / CELL_FILE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return Outcome(cell, rc == 0, wall, stage, rc, resumed)


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
) -> list[Outcome]:
    """Run every incomplete cell, ``jobs`` at a time; returns the outcomes of those run.

    The first cell of a study runs before its siblings start, so per-dataset caches (a trained
    feature extractor, a generated corpus) are built once instead of by several processes racing.
    ``reevaluate``: evaluate the complete cells again as well (without retraining them).
    ``on_done(cell)`` is called as each cell completes (e.g. to export its records at once, so
    a long matrix cut short still leaves every finished cell's evidence behind).
    """
    say = say or _print
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
        f"{len(todo)} to run{f' ({len(again)} only to evaluate again)' if again else ''}, {jobs} in parallel, "
        f"{threads} thread(s) each")
    if not todo:
        return []
    per = ", ".join(f"{s} ≈ {fmt_duration(est.per_cell(s))}/cell ({est.source(s)})" for s in studies)
    say(f"estimated time: {fmt_duration(est.left(todo, {}, jobs))} ({per})")

    primed = {c.study for c in cells if c.is_complete() and not reevaluate}
    evaluate_only = {id(c) for c in again}
    pending = list(todo)
    running: dict[Future, Cell] = {}
    started: dict[Cell, float] = {}
    outcomes: list[Outcome] = []
    live = Live()
    finished = done_before
    last_beat = time.time()
    with RunLock(root) as lock, terminate_as_exit(), ThreadPoolExecutor(max_workers=jobs) as pool:
        live.on_change = lock.write
        try:
            while pending or running:
                while len(running) < jobs:
                    busy = {c.study for c in running.values()}
                    nxt = next((c for c in pending if c.study in primed or c.study not in busy), None)
                    if nxt is None:
                        break
                    pending.remove(nxt)
                    started[nxt] = time.time()
                    running[pool.submit(run_cell, nxt, threads, live, python, id(nxt) in evaluate_only)] = nxt
                    left = est.left(pending, {c: started[c] for c in running.values()}, jobs)
                    say(f"[start] {nxt.key}  ({len(running)} running, {len(pending)} queued, ~{fmt_duration(left)} left)")
                done, _ = wait(list(running), timeout=HEARTBEAT_S, return_when=FIRST_COMPLETED)
                for fut in done:
                    cell = running.pop(fut)
                    out = fut.result()
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
            live.terminate_all()
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
