"""One cell of the matrix, run: the app's train then evaluate command as subprocesses.

Why subprocesses: a cell is then exactly what a user would run by hand (``cell.json`` holds the
commands), one crashing cell cannot take the others down, and each process gets its own thread
budget (OMP_NUM_THREADS) and, on a GPU machine, its own GPU (CUDA_VISIBLE_DEVICES). The same
function runs a cell in a thread of the local runner and inside a Ray task on a cluster node.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping

from apps.compare.environment import git_state
from apps.compare.matrix import CELL_FILE, Cell
from apps.compare.placement import env_prefix
from apps.compare.procs import Live, cell_env, run_logged


@dataclass
class Outcome:
    """What running one cell did."""

    cell: Cell
    ok: bool
    wall_s: float
    stage: str = ""  # "train" or "evaluate" when it failed (or "ray" when the task itself failed)
    returncode: int = 0
    resumed: bool = False  # the run directory existed: wall_s is only the rest of the work
    error: str = ""  # why it failed when no log says it (a lost node, a task that did not start)


def run_cell(cell: Cell, threads: int = 1, live: Live | None = None, python: str = sys.executable,
             evaluate_only: bool = False, env: Mapping[str, str] | None = None, where: str = "",
             cwd: str | None = None) -> Outcome:
    """Train (or resume) then evaluate one cell; logs and ``cell.json`` go in the cell folder.

    ``evaluate_only`` re-runs just the evaluation of a trained cell (the app's evaluation has
    changed, or the preset's ``eval_args``); the training figures of ``cell.json`` are kept.
    ``cell.json`` also names the code: the git commit (and whether tracked files differed from
    it) when the cell started; a re-evaluation keeps the training's as ``train_commit``.
    ``env``: variables the cell's processes get on top of the thread budget (its GPU: then the
    recorded commands start with ``CUDA_VISIBLE_DEVICES=<n>``); ``where``: the placement in words
    for ``cell.json``; ``cwd``: the folder the commands run from (default: this process's).
    """
    live = live or Live()
    env = dict(env or {})
    code = git_state()
    cell.dir.mkdir(parents=True, exist_ok=True)
    proc_env = {**cell_env(threads), **env}
    old = cell.bookkeeping() or {}
    resumed = cell.run_dir.exists() if not evaluate_only else bool(old.get("resumed"))
    t0 = time.time()
    if evaluate_only:
        rc, train_cpu = 0, old.get("train_cpu_s")
    else:
        rc, train_cpu = run_logged(cell.train_argv(python), cell.dir / "train.log", proc_env, live, cwd)
    t1 = time.time()
    train_s = old.get("train_s", 0.0) if evaluate_only else t1 - t0
    eval_s, eval_cpu, stage = 0.0, None, ""
    if rc != 0:
        stage = "train"
    else:
        rc, eval_cpu = run_logged(cell.eval_argv(python), cell.dir / "eval.log", proc_env, live, cwd)
        eval_s = time.time() - t1
        if rc != 0:
            stage = "evaluate"
        elif not cell.is_complete(ignore_bookkeeping=True):
            stage, rc = "evaluate", 1  # exit 0 but no eval.json at the final step: not done
    wall = time.time() - t0
    record = {
        "study": cell.study, "app": cell.app, "variant": cell.variant, "seed": cell.seed,
        "steps": cell.steps, "eval_args": list(cell.eval_args),
        "commands": [env_prefix(env) + c for c in cell.commands(threads)],
        "train_s": round(train_s, 3), "eval_s": round(eval_s, 3), "wall_s": round(train_s + eval_s, 3),
        "resumed": resumed, "train_cpu_s": None if train_cpu is None else round(train_cpu, 3),
        "eval_cpu_s": None if eval_cpu is None else round(eval_cpu, 3),
        "returncode": rc, "failed_stage": stage or None, "threads": threads,
        "commit": code["commit"], "dirty": code["dirty"],
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if where:
        record["placement"] = where
    if evaluate_only:
        record["train_commit"] = old.get("train_commit", old.get("commit"))
        record["train_dirty"] = old.get("train_dirty", old.get("dirty"))
    if not live.stopping:  # an interrupted cell is neither done nor failed
        (cell.dir / CELL_FILE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return Outcome(cell, rc == 0, wall, stage, rc, resumed)
