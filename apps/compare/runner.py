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
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Sequence

from apps.compare.matrix import CELL_FILE, Cell
from common.errors import UserError

REPO_ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT_S = 60.0


def fmt_duration(seconds: float) -> str:
    """``75`` → ``1m15s``; ``4000`` → ``1h06m`` (rounded down to the minute)."""
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def cell_env(threads: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of a cell process: its thread budget, and the project importable."""
    env = dict(os.environ if base is None else base)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("TQDM_MININTERVAL", "10")  # progress bars into a log file: a line per 10 s
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Outcome:
    """What running one cell did."""

    cell: Cell
    ok: bool
    wall_s: float
    stage: str = ""  # "train" or "evaluate" when it failed
    returncode: int = 0
    resumed: bool = False  # the run directory existed: wall_s is only the rest of the work


@dataclass
class _Live:
    """Processes started by this runner, so an interrupt can end exactly those.

    Their pids are also kept in the lock file (``on_change``), so that a later run can tell that
    cells of a comparison killed outright (SIGKILL, no chance to clean up) are still running and
    must not be started a second time on the same run directories.
    """

    procs: set[subprocess.Popen] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: bool = False
    on_change: Callable[[list[int]], None] | None = None

    def add(self, proc: subprocess.Popen) -> None:
        self.procs.add(proc)
        self._changed()

    def discard(self, proc: subprocess.Popen) -> None:
        self.procs.discard(proc)
        self._changed()

    def _changed(self) -> None:  # called with self.lock held
        if self.on_change is not None:
            self.on_change(sorted(p.pid for p in self.procs))

    def terminate_all(self) -> None:
        with self.lock:
            self.stopping = True
            procs = list(self.procs)
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def _run_logged(argv: list[str], log: Path, env: dict[str, str], live: _Live) -> tuple[int, float | None]:
    """Run ``argv`` with its output appended to ``log``; (exit status, CPU seconds it used).

    CPU seconds are the cost figure that survives a busy machine: wall time grows with whatever
    else runs, the process's own user + system time hardly does.
    """
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"\n# {datetime.now().isoformat(timespec='seconds')}  {' '.join(argv)}\n")
        fh.flush()
        with live.lock:
            if live.stopping:
                return -15, None
            proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=os.getcwd(),
                                    stdin=subprocess.DEVNULL)
            live.add(proc)
        try:
            return _wait(proc)
        finally:
            with live.lock:
                live.discard(proc)


def _wait(proc: subprocess.Popen) -> tuple[int, float | None]:
    """Wait for ``proc``; with its resource usage where the OS reports it (wait4)."""
    if hasattr(os, "wait4"):
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except ChildProcessError:  # already reaped by an interrupt's terminate_all()
            return proc.wait(), None
        proc.returncode = os.waitstatus_to_exitcode(status)  # tell Popen, or it would wait again
        return proc.returncode, usage.ru_utime + usage.ru_stime
    return proc.wait(), None


def run_cell(cell: Cell, threads: int = 1, live: _Live | None = None, python: str = sys.executable) -> Outcome:
    """Train (or resume) then evaluate one cell; logs and ``cell.json`` go in the cell folder."""
    live = live or _Live()
    cell.dir.mkdir(parents=True, exist_ok=True)
    env = cell_env(threads)
    resumed = cell.run_dir.exists()
    t0 = time.time()
    rc, train_cpu = _run_logged(cell.train_argv(python), cell.dir / "train.log", env, live)
    t1 = time.time()
    eval_s, eval_cpu, stage = 0.0, None, ""
    if rc != 0:
        stage = "train"
    else:
        rc, eval_cpu = _run_logged(cell.eval_argv(python), cell.dir / "eval.log", env, live)
        eval_s = time.time() - t1
        if rc != 0:
            stage = "evaluate"
        elif not cell.is_complete():
            stage, rc = "evaluate", 1  # exit 0 but no eval.json at the final step: not done
    wall = time.time() - t0
    record = {
        "study": cell.study, "app": cell.app, "variant": cell.variant, "seed": cell.seed,
        "steps": cell.steps, "eval_args": list(cell.eval_args), "commands": cell.commands(threads), "train_s": round(t1 - t0, 3),
        "eval_s": round(eval_s, 3), "wall_s": round(wall, 3), "resumed": resumed,
        "train_cpu_s": None if train_cpu is None else round(train_cpu, 3),
        "eval_cpu_s": None if eval_cpu is None else round(eval_cpu, 3),
        "returncode": rc, "failed_stage": stage or None, "threads": threads,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if not live.stopping:  # an interrupted cell is neither done nor failed
        (cell.dir / CELL_FILE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return Outcome(cell, rc == 0, wall, stage, rc, resumed)


class _Lock:
    """A lock file that keeps two comparisons — or a new one and the orphaned cells of one that
    was killed — from driving the same run directories at once."""

    def __init__(self, root: Path):
        self.path = root / ".compare.lock"

    def __enter__(self) -> "_Lock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            old = json.loads(self.path.read_text())
        except (OSError, ValueError):
            old = {}
        pid = old.get("pid") if isinstance(old, dict) else None
        if isinstance(pid, int) and pid != os.getpid() and _alive(pid, "apps.compare"):
            raise UserError(f"another comparison (pid {pid}) is running on '{self.path.parent}'; "
                            "wait for it or stop it first")
        orphans = [c for c in (old.get("children", []) if isinstance(old, dict) else []) if _alive(c, "apps.")]
        if orphans:
            raise UserError(f"cells of an interrupted comparison are still running on '{self.path.parent}' "
                            f"(pids {', '.join(map(str, orphans))}); wait for them to end or stop them, then re-run")
        self.write([])
        return self

    def write(self, children: list[int]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "children": children}) + "\n")
        os.replace(tmp, self.path)

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


def _alive(pid: int, marker: str) -> bool:
    """Process ``pid`` exists and its command line mentions ``marker`` (pids get reused)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return True  # no /proc (macOS): trust the pid
    return marker in cmdline


class Estimator:
    """Seconds per cell, per study: the preset's guess until cells have been measured."""

    def __init__(self, guesses: dict[str, float], cells: Sequence[Cell]):
        self.guesses = dict(guesses)
        self.measured: dict[str, list[float]] = {}
        for c in cells:
            rec = c.bookkeeping()
            if rec and rec.get("returncode") == 0 and not rec.get("resumed") and c.is_complete():
                self.add(c.study, float(rec.get("wall_s", 0.0)))

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
) -> list[Outcome]:
    """Run every incomplete cell, ``jobs`` at a time; returns the outcomes of those run.

    The first cell of a study runs before its siblings start, so per-dataset caches (the GAN's
    FID classifier, a generated corpus) are built once instead of by several processes racing.
    """
    say = say or _print
    todo = [c for c in cells if not c.is_complete()]
    done_before = len(cells) - len(todo)
    est = Estimator(guesses, cells)
    studies = sorted({c.study for c in cells})
    n_var = {s: len({c.variant for c in cells if c.study == s}) for s in studies}
    n_seed = len({c.seed for c in cells})
    shape = " + ".join(f"{s}: {n_var[s]} variants" for s in studies)
    say(f"matrix: {len(cells)} cells ({shape}; × {n_seed} seeds) — {done_before} complete, "
        f"{len(todo)} to run, {jobs} in parallel, {threads} thread(s) each")
    if not todo:
        return []
    per = ", ".join(f"{s} ≈ {fmt_duration(est.per_cell(s))}/cell ({est.source(s)})" for s in studies)
    say(f"estimated time: {fmt_duration(est.left(todo, {}, jobs))} ({per})")

    primed = {c.study for c in cells if c.is_complete()}
    pending = list(todo)
    running: dict[Future, Cell] = {}
    started: dict[Cell, float] = {}
    outcomes: list[Outcome] = []
    live = _Live()
    finished = done_before
    last_beat = time.time()
    with _Lock(root) as lock, _terminate_as_exit(), ThreadPoolExecutor(max_workers=jobs) as pool:
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
                    running[pool.submit(run_cell, nxt, threads, live, python)] = nxt
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
                    if out.ok and not out.resumed:
                        est.add(cell.study, out.wall_s)
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


@contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """Turn SIGTERM into SystemExit while the matrix runs, so ``kill PID`` ends the cells too
    (the default SIGTERM action would leave them running as orphans)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _print(message: str) -> None:
    print(message, flush=True)  # progress must reach a log file as it happens, not when a buffer fills


def _headline(cell: Cell) -> str:
    rec = cell.eval_record() or {}
    parts = []
    for key in ("fid", "kid_mean", "bleu", "chrf"):
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
