"""The runner's processes: their environment, logs and CPU time, a clean end on interrupt, and
the lock that keeps two comparisons (or orphans of a killed one) off the same run directories."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

from common.errors import UserError

REPO_ROOT = Path(__file__).resolve().parents[2]


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
class Live:
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


def run_logged(argv: list[str], log: Path, env: dict[str, str], live: Live,
               cwd: str | None = None) -> tuple[int, float | None]:
    """Run ``argv`` (from ``cwd``, default this process's folder) with its output appended to
    ``log``; (exit status, CPU seconds it used).

    CPU seconds are the cost figure that survives a busy machine: wall time grows with whatever
    else runs, the process's own user + system time hardly does.
    """
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"\n# {datetime.now().isoformat(timespec='seconds')}  {' '.join(argv)}\n")
        fh.flush()
        with live.lock:
            if live.stopping:
                return -15, None
            proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=cwd or os.getcwd(),
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


class RunLock:
    """A lock file that keeps two comparisons — or a new one and the orphaned cells of one that
    was killed — from driving the same run directories at once.

    It names the driver's host and pid, and the pids of the cells it started here. Whether they
    still run can be checked only on the same host: a lock left by a comparison started on another
    machine (the run directories are shared, as a Ray cluster needs) is refused with the file to
    delete once that comparison is surely gone. Each cell's run directory has its own lock besides
    (``common.runlock``), which works across machines.
    """

    def __init__(self, root: Path):
        self.path = root / ".compare.lock"

    def __enter__(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            old = json.loads(self.path.read_text())
        except (OSError, ValueError):
            old = {}
        old = old if isinstance(old, dict) else {}
        pid, host = old.get("pid"), old.get("host")
        if isinstance(host, str) and host != socket.gethostname() and isinstance(pid, int):
            raise UserError(f"a comparison started on host {host} (pid {pid}) holds '{self.path}'; wait for it, or "
                            "delete that file once it is surely no longer running")
        if isinstance(pid, int) and pid != os.getpid() and _alive(pid, "apps.compare"):
            raise UserError(f"another comparison (pid {pid}) is running on '{self.path.parent}'; "
                            "wait for it or stop it first")
        orphans = [c for c in old.get("children", []) if isinstance(c, int) and _alive(c, "apps.")]
        if orphans:
            raise UserError(f"cells of an interrupted comparison are still running on '{self.path.parent}' "
                            f"(pids {', '.join(map(str, orphans))}); wait for them to end or stop them, then re-run")
        self.write([])
        return self

    def write(self, children: list[int]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "children": children}) + "\n")
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


@contextmanager
def terminate_as_exit() -> Iterator[None]:
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
