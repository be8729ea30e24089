"""One writer per run directory: ``RUN/writer.lock`` names the process that may write into RUN.

A training or an evaluation holds the lock for as long as it may write; a second one is refused
with one line naming the holder (host, pid, what it runs, since when). A lock whose holder is
gone is taken over, with one line saying so. Readers (sampling, translating) take no lock.

What it relies on — only operations that are atomic on local filesystems and on NFS-like shared
ones (NFSv3 and later, the folders the Ray executor shares between machines); fcntl/flock locks are
deliberately not used, since over NFS they depend on a lock daemon and some mounts fake them:

- ``os.open(O_CREAT | O_EXCL)``: of several processes creating the lock file, exactly one succeeds;
- ``os.rename`` inside one directory: a stale lock is renamed to a unique name before it is
  deleted, so of several processes taking over the same stale lock only one succeeds; one that
  finds it renamed a lock other than the one it judged stale (a faster one had already replaced
  it) puts it back;
- file times set by the filesystem: the heartbeat is the lock file's mtime (``os.utime``), and
  "now" is the mtime of a file just created beside it, so on a shared filesystem both come from
  the server's clock and the machines' clocks need not agree.

When the holder is gone:

- on the same machine (same host name, boot and pid namespace): its pid no longer exists, is a
  zombie, or now belongs to a process that started at another time than the recorded one
  (``/proc/<pid>/stat``; without ``/proc`` only the pid is checked);
- on another machine its pid means nothing here, so the holder refreshes the lock file's mtime
  from a background thread every ``min(60 s, stale timeout / 10)`` (a thread, not the training
  loop: a long evaluation or a slow first step would otherwise look dead), and a lock not
  refreshed for ``$LEAKYLAB_LOCK_STALE_S`` seconds (default 600) is taken over.

A lock is let go when its holder releases it (``release``, a ``with`` block, the end of a
:func:`released_on_exit` block) and at interpreter exit. A holder killed by a signal leaves it
behind for the rules above: no SIGTERM handler is installed, because a process stuck in a
collective (DDP) must stay killable, and a Python handler would only run once the call returned. Within one process a run directory may be locked more than once (a test, a
notebook): the locks are counted and the file goes with the last release.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import socket
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from common.errors import UserError

LOCK_NAME = "writer.lock"
STALE_ENV = "LEAKYLAB_LOCK_STALE_S"
DEFAULT_STALE_S = 600.0
_ATTEMPTS = 5  # rounds of create / judge / take over before giving up on a contested lock


def is_lock_file(name: str) -> bool:
    """True for the lock file and the short-lived files this module makes beside it."""
    return name == LOCK_NAME or name.startswith(f".{LOCK_NAME}.")


def stale_after() -> float:
    """Seconds without a heartbeat after which another machine's lock counts as abandoned."""
    text = os.environ.get(STALE_ENV, "").strip()
    if not text:
        return DEFAULT_STALE_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise UserError(f"{STALE_ENV}={text!r} must be a positive number of seconds (default {DEFAULT_STALE_S:.0f})")
    return value


# -- who holds it ----------------------------------------------------------------------------------


def _read_text(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError:
        return None


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks since boot) of ``pid`` from /proc; None without it."""
    text = _read_text(f"/proc/{pid}/stat")
    if not text or ")" not in text:
        return None
    fields = text[text.rindex(")") + 1:].split()  # the command name may hold spaces and ")"
    return (fields[0], fields[19]) if len(fields) > 19 else None


def machine_scope() -> str:
    """What must match besides the host name for a pid to mean the same process: the boot and the
    pid namespace (containers on one host may share its name). Empty where /proc has neither."""
    try:
        pidns = os.readlink("/proc/self/ns/pid")
    except OSError:
        pidns = ""
    return f"{_read_text('/proc/sys/kernel/random/boot_id') or ''}/{pidns}"


def _me(what: str) -> dict:
    stat = _proc_stat(os.getpid())
    return {"host": socket.gethostname(), "pid": os.getpid(), "start": stat[1] if stat else None,
            "scope": machine_scope(), "what": what, "since": time.time(), "token": secrets.token_hex(8)}


@dataclass
class _Seen:
    """A lock file as read: its bytes, its record (None when unreadable) and its mtime."""

    raw: bytes
    info: dict | None
    mtime: float


def _parse(raw: bytes) -> dict | None:
    try:
        info = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    ok = (isinstance(info, dict) and isinstance(info.get("host"), str) and type(info.get("pid")) is int
          and info["pid"] > 0 and isinstance(info.get("since"), (int, float)))
    return info if ok else None


def _read(path: Path) -> _Seen | None:
    """The lock file now; None if it is gone. A file being written (empty or half) is read again a
    few times before it counts as unreadable."""
    for attempt in range(5):
        if attempt:
            time.sleep(0.1)
        try:
            with open(path, "rb") as fh:
                seen = _Seen(fh.read(), None, os.fstat(fh.fileno()).st_mtime)
        except FileNotFoundError:
            return None
        seen.info = _parse(seen.raw)
        if seen.info is not None:
            break
    return seen


def _fs_now(folder: Path) -> float:
    """The filesystem's clock: the mtime of a file created in ``folder`` (the host's on failure)."""
    probe = folder / f".{LOCK_NAME}.clock-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError:
        return time.time()
    try:
        return os.fstat(fd).st_mtime
    finally:
        os.close(fd)
        probe.unlink(missing_ok=True)


def _ago(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def describe(info: dict) -> str:
    """The holder in words: what, host, pid and since when."""
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["since"]))
    what = info.get("what") if isinstance(info.get("what"), str) else "a leakylab process"
    return f"{what} (host {info['host']}, pid {info['pid']}, since {since})"


def _same_machine(info: dict) -> bool:
    return info["host"] == socket.gethostname() and info.get("scope") == machine_scope()


def _gone_here(info: dict) -> str | None:
    """Why the holder on this machine is gone; None while it runs."""
    pid = info["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"process {pid} no longer exists"
    except PermissionError:
        pass  # another user's process: it exists
    except OverflowError:
        return f"pid {pid} cannot exist"
    stat = _proc_stat(pid)
    if stat is not None:
        state, start = stat
        if state in ("Z", "X"):
            return f"process {pid} has exited"
        if info.get("start") is not None and start != info["start"]:
            return f"pid {pid} now belongs to another process"
    return None


def _why_stale(seen: _Seen, folder: Path) -> str | None:
    """Why the lock ``seen`` may be taken over; None when its holder may still be alive."""
    if seen.info is not None and _same_machine(seen.info):
        return _gone_here(seen.info)
    stale = stale_after()
    age = _fs_now(folder) - seen.mtime
    if age <= stale:
        return None
    if seen.info is None:
        return f"the lock file is unreadable and {_ago(age)} old"
    return f"its heartbeat is {_ago(age)} old (stale after {_ago(stale)}, {STALE_ENV})"


def _refusal(path: Path, seen: _Seen, folder: Path) -> str:
    run = path.parent
    if seen.info is None:
        who = f"a process whose lock file '{path}' cannot be read"
    else:
        who = describe(seen.info)
    text = f"'{run}' is in use by {who}; wait for it to finish or stop it (one writer per run directory)"
    if seen.info is None or not _same_machine(seen.info):
        text += (f"; its last heartbeat was {_ago(_fs_now(folder) - seen.mtime)} ago, and if that process is gone "
                 f"its lock is taken over after {_ago(stale_after())} without one ({STALE_ENV}), or delete '{path}'")
    return text


def _remove_if_unchanged(path: Path, raw: bytes) -> bool:
    """Delete the lock file if it still holds ``raw``; False if another process got there first."""
    aside = path.with_name(f".{LOCK_NAME}.stale-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    try:
        now = aside.read_bytes()
    except OSError:
        now = None
    if now != raw:  # a faster process replaced the stale lock with its own: put that one back
        try:
            os.link(aside, path)
        except FileExistsError:
            pass
        except OSError:  # a filesystem without hard links
            if not path.exists():
                os.rename(aside, path)
        aside.unlink(missing_ok=True)
        return False
    aside.unlink(missing_ok=True)
    return True


# -- holding it ------------------------------------------------------------------------------------


class _Holder:
    """This process's hold on one lock file, shared by every :class:`RunLock` of that run."""

    def __init__(self, path: Path, what: str):
        self.path, self.what, self.count = path, what, 0
        self.pid = os.getpid()
        self.raw = b""
        self.stop = threading.Event()
        self.beat: threading.Thread | None = None

    def take(self) -> None:
        """Create the lock file, taking over an abandoned one; a UserError if it is held."""
        for _ in range(_ATTEMPTS):
            self.raw = (json.dumps(_me(self.what)) + "\n").encode("utf-8")
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                pass
            except OSError as exc:
                raise UserError(f"cannot create the lock file '{self.path}' ({exc.strerror}); "
                                "the run directory must be writable") from None
            else:
                try:
                    os.write(fd, self.raw)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                self._start_heartbeat()
                return
            seen = _read(self.path)
            if seen is None:
                continue  # released just now: try again
            why = _why_stale(seen, self.path.parent)
            if why is None:
                raise UserError(_refusal(self.path, seen, self.path.parent))
            if _remove_if_unchanged(self.path, seen.raw):
                holder = describe(seen.info) if seen.info is not None else "an unknown process"
                print(f"note: taking over the lock of '{self.path.parent}' from {holder}: {why}",
                      file=sys.stderr, flush=True)
        raise UserError(f"could not take the lock '{self.path}': other processes keep taking it; try again")

    def _start_heartbeat(self) -> None:
        interval = max(0.2, min(60.0, stale_after() / 10))
        self.stop.clear()
        self.beat = threading.Thread(target=self._heartbeat, args=(interval,), name="leakylab-lock-heartbeat",
                                     daemon=True)
        self.beat.start()

    def _heartbeat(self, interval: float) -> None:
        while not self.stop.wait(interval):
            try:
                raw = self.path.read_bytes()
            except FileNotFoundError:
                raw = None
            except OSError:
                continue  # a hiccup of a shared filesystem: try at the next beat
            if raw != self.raw:
                print(f"warning: the lock of '{self.path.parent}' was removed or taken by another process; "
                      "two writers may now share this run directory", file=sys.stderr, flush=True)
                return
            try:
                os.utime(self.path)
            except OSError:
                pass

    def drop(self) -> None:
        """Stop the heartbeat and delete the lock file if it is still this process's."""
        self.stop.set()
        if self.beat is not None and self.beat is not threading.current_thread():
            self.beat.join(timeout=5)
        if os.getpid() != self.pid:
            return  # a forked child never releases its parent's lock
        try:
            if self.path.read_bytes() == self.raw:
                self.path.unlink()
        except OSError:
            pass


_HELD: dict[str, _Holder] = {}
_HELD_LOCK = threading.RLock()
_SCOPES: list[list["RunLock"]] = []


class RunLock:
    """This process's claim on a run directory's lock; release it once (later calls do nothing)."""

    def __init__(self, key: str, holder: _Holder):
        self._key, self._holder, self.released = key, holder, False

    @property
    def path(self) -> Path:
        return self._holder.path

    def release(self) -> None:
        with _HELD_LOCK:
            if self.released:
                return
            self.released = True
            self._holder.count -= 1
            if self._holder.count == 0:
                self._holder.drop()
                if _HELD.get(self._key) is self._holder:
                    del _HELD[self._key]

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def acquire(run: str | Path, what: str) -> RunLock:
    """Lock run directory ``run`` (which must exist) for this process; ``what`` says what it runs
    (shown to a process that is refused). A UserError naming the holder if another one has it."""
    path = Path(run) / LOCK_NAME
    key = os.path.realpath(run)
    with _HELD_LOCK:
        holder = _HELD.get(key)
        if holder is None or holder.pid != os.getpid():
            holder = _Holder(path, what)
            holder.take()
            _HELD[key] = holder
        holder.count += 1
        lock = RunLock(key, holder)
        if _SCOPES:
            _SCOPES[-1].append(lock)
    return lock


@contextmanager
def released_on_exit() -> Iterator[None]:
    """Locks taken inside the block are released when it ends, however it ends — so a command run
    in-process (a test, a notebook) never leaves its run directory locked behind an exception."""
    taken: list[RunLock] = []
    _SCOPES.append(taken)
    try:
        yield
    finally:
        _SCOPES.remove(taken)
        for lock in taken:
            lock.release()


@atexit.register
def _release_all() -> None:
    with _HELD_LOCK:
        for holder in list(_HELD.values()):
            if holder.pid == os.getpid():
                holder.drop()
        _HELD.clear()
