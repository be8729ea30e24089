"""Cells as tasks on a Ray cluster (``executor: ray``).

Each cell is one Ray task running the local runner's own function (``cellrun.run_cell``): the
app's train and evaluate commands as subprocesses on the node Ray picked, so a cell is still
exactly what a user would run by hand there. A task asks for the preset's ``threads`` as CPUs
and, where the cluster has GPUs, for 1/``cells_per_gpu`` of a GPU; Ray sets the task's
CUDA_VISIBLE_DEVICES, which the cell's processes inherit. This process, the driver, keeps the
rest: the order of the cells, progress and the time left, the comparison's lock, the export of
each finished cell and the report.

A node needs what a user running the cell by hand there would need: the project, its interpreter
and the folder the comparison was started from at the same paths, and the comparison's run
directories on storage every node sees (NFS or a cluster filesystem, mounted at the same path).
Before a task runs its cell it checks that it sees the marker file the driver wrote into the
comparison's folder for this run; a node that does not (a node-local disk at the same path, a
missing mount) is named in a one-line refusal, and the comparison stops before it runs anything
there. Ray is imported only here, and only with ``executor: ray``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import sys
import threading
from concurrent.futures import Future, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from apps.compare.cellrun import Outcome, run_cell
from apps.compare.matrix import Cell
from apps.compare.placement import cluster_capacity
from apps.compare.procs import REPO_ROOT, Live, RunLock
from common.errors import UserError

MARKER = ".compare.node-check"
STOP_WAIT_S = 30.0  # how long an interrupt waits for the tasks to end their cells' processes


def import_ray() -> Any:
    """The ``ray`` module, or a one-line UserError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError("executor: ray needs Ray, which is not installed; pip install 'leakylab[cluster]' "
                        "(or run with executor=local)") from None
    return ray


def write_marker(root: Path) -> str:
    """Write a fresh token into the comparison's folder (atomically) and return it: a node whose
    tasks read back this token sees the same folder as the driver."""
    token = secrets.token_hex(16)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f"{MARKER}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"token": token, "driver": socket.gethostname(), "pid": os.getpid()}) + "\n",
                   encoding="utf-8")
    os.replace(tmp, root / MARKER)
    return token


def check_node(root: str, token: str, python: str, cwd: str) -> str | None:
    """Why this node cannot run the comparison's cells (one clause), or None when it can: it must
    see the driver's marker in ``root`` with this run's token, the interpreter and the folder the
    commands run from."""
    try:
        seen = json.loads((Path(root) / MARKER).read_text(encoding="utf-8")).get("token")
    except (OSError, ValueError, AttributeError):
        seen = None
    if seen != token:
        what = "no marker" if seen is None else "another run's marker"
        return (f"does not see the comparison's run directory '{root}' ({what} {MARKER} where the driver "
                "wrote this run's)")
    if shutil.which(python) is None:
        return f"has no interpreter '{python}'"
    if not os.path.isdir(cwd):
        return f"has no folder '{cwd}' to run the cells from"
    return None


def node_name() -> str:
    """This node as a message names it: host name and, inside Ray, its IP address."""
    try:
        import ray

        return f"{socket.gethostname()} ({ray.util.get_node_ip_address()})"
    except Exception:  # outside Ray, or an old Ray: the host name alone still names the node
        return socket.gethostname()


@dataclass
class Refusal:
    """A task's answer when its node cannot run the comparison's cells."""

    node: str
    why: str


def cell_task(cell: Cell, threads: int, python: str, evaluate_only: bool, root: str, token: str,
              cwd: str) -> Outcome | Refusal:
    """The Ray task of one cell: check the node, then run the cell as the local runner would.

    The cell runs in a thread while this one waits, so that cancelling the task (the driver was
    interrupted) raises here, at once, and the cell's processes are ended instead of orphaned.
    """
    why = check_node(root, token, python, cwd)
    if why is not None:
        return Refusal(node_name(), why)
    os.chdir(cwd)  # the cells' relative paths (out=, --config) mean what they meant to the driver
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    where = f"Ray node {node_name()}" + (f", GPU {gpu}" if gpu else "") + f", {threads} thread{'s' * (threads != 1)}"
    live = Live()
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            result["outcome"] = run_cell(cell, threads, live, python, evaluate_only, {}, where, cwd)
        except BaseException as exc:  # handed to the task's thread, which raises it to Ray
            result["error"] = exc

    worker = threading.Thread(target=work, name=f"cell {cell.key}", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.5)
    except BaseException:  # ray.cancel(): KeyboardInterrupt
        live.terminate_all()
        worker.join(STOP_WAIT_S)
        raise
    if "error" in result:
        raise result["error"]
    return result["outcome"]


class RayExecutor:
    """Runs cells as Ray tasks on the cluster at ``address`` (``auto``, ``HOST:PORT``), or on a
    local cluster started for the comparison (``address`` empty), or on the cluster this process
    is already connected to (``ray.init`` called before, as in a notebook)."""

    def __init__(self, address: str | None, threads: int, cells_per_gpu: int, root: Path, jobs: int = 0,
                 python: str = sys.executable, say: Callable[[str], None] = print):
        self.ray = import_ray()
        self.address = address or None
        self.threads, self.cells_per_gpu, self.jobs = threads, cells_per_gpu, jobs
        self.root, self.python, self.say = Path(root).absolute(), python, say
        self.cwd = os.getcwd()
        self.token = ""
        self.task: Any = None
        self.refs: dict[Future, Any] = {}
        self.cells: dict[Future, Cell] = {}

    def describe(self, jobs: int, threads: int) -> str:
        where = f"the Ray cluster at {self.address}" if self.address else "a local Ray cluster"
        return f"as tasks on {where}, {threads} CPU(s) each"

    def _connect(self) -> bool:
        """Connect to (or start) the cluster; True when this process started it."""
        ray = self.ray
        if ray.is_initialized():
            return False
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report, no question asked
        try:
            ray.init(address=self.address, include_dashboard=False)
        except ConnectionError as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            raise UserError(f"cannot reach the Ray cluster at ray_address={self.address} ({first}); start one "
                            "with `ray start --head`, or leave ray_address empty for a local cluster") from None
        return True

    @contextmanager
    def session(self, lock: RunLock) -> Iterator[int]:
        ray = self.ray
        started = self._connect()
        try:
            nodes = [(float(n["Resources"].get("CPU", 0)), float(n["Resources"].get("GPU", 0)))
                     for n in ray.nodes() if n.get("Alive")]
            capacity = cluster_capacity(nodes, self.threads, self.cells_per_gpu)
            if capacity < 1:
                most = max((c for c, _ in nodes), default=0)
                raise UserError(f"no node of the Ray cluster can run a cell: threads={self.threads} CPUs are asked "
                                f"per cell and the largest node has {most:g}; lower threads")
            cpus, gpus = sum(c for c, _ in nodes), sum(g for _, g in nodes)
            num_gpus = 1.0 / self.cells_per_gpu if gpus > 0 else 0.0
            jobs = min(self.jobs, capacity) if self.jobs else capacity
            self.say(f"ray: {len(nodes)} node(s), {cpus:g} CPUs, {gpus:g} GPUs → {jobs} cell(s) at a time, "
                     f"each task num_cpus={self.threads}, num_gpus={num_gpus:g}")
            self.token = write_marker(self.root)
            # The workers import this module, the cells' code, from the driver's checkout.
            path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
            self.task = ray.remote(cell_task).options(
                num_cpus=self.threads, num_gpus=num_gpus, max_retries=0,
                runtime_env={"env_vars": {"PYTHONPATH": path}})
            yield jobs
        finally:
            (self.root / MARKER).unlink(missing_ok=True)
            if started:
                ray.shutdown()

    def submit(self, cell: Cell, evaluate_only: bool) -> tuple[Future, str]:
        ref = self.task.remote(cell, self.threads, self.python, evaluate_only, str(self.root), self.token, self.cwd)
        fut = ref.future()
        self.refs[fut], self.cells[fut] = ref, cell
        return fut, "a Ray task"

    def finish(self, fut: Future) -> Outcome:
        self.refs.pop(fut, None)
        cell = self.cells.pop(fut)
        try:
            got = fut.result()
        except self.ray.exceptions.RayError as exc:  # the task itself failed: a lost node, a broken worker
            lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
            return Outcome(cell, False, 0.0, "ray", -1, error=f"its Ray task failed: {lines[-1] if lines else exc!r}")
        if isinstance(got, Refusal):
            raise UserError(f"Ray node {got.node} {got.why}; the run directories (out=) must be on storage every node "
                            "mounts at the same path, like the project and its interpreter, or run with executor=local")
        return got

    def stop(self) -> None:
        refs = list(self.refs.values())
        for ref in refs:
            self.ray.cancel(ref)  # the task ends its cell's processes and raises
        if refs:
            wait(list(self.refs), timeout=STOP_WAIT_S)
            for fut, ref in self.refs.items():
                if not fut.done():
                    self.ray.cancel(ref, force=True)
