"""Where the comparison ran: versions, device, cores — the context a reader needs for the costs."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from typing import Any

from apps.compare.procs import REPO_ROOT


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def git_state() -> dict[str, Any]:
    """``{"commit": full hash of HEAD, "dirty": tracked files changed}`` of the project, both None
    when git or the repository is unavailable — what a cell's numbers were computed by.

    ``findings/`` does not count as a change: exporting earlier cells writes there while later
    cells run, and committed evidence is not code.
    """
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout if out.returncode == 0 else None

    commit = (git("rev-parse", "HEAD") or "").strip() or None
    if commit is None:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)findings")
    return {"commit": commit, "dirty": None if status is None else bool(status.strip())}


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(threads: int, jobs: int) -> dict[str, Any]:
    """Versions, device and parallelism of this machine (the cells ran here)."""
    import torch  # imported late: the runner itself does not need it

    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "device": torch.cuda.get_device_name(0) if cuda else f"CPU ({_cpu_name()})",
        "gpus": torch.cuda.device_count() if cuda else 0,
        "cpu_count": os.cpu_count(),
        "parallel_cells": jobs,
        "threads_per_cell": threads,
        "packages": {d: _version(d) for d in ("numpy", "scipy", "accelerate", "torchmetrics", "sacrebleu",
                                              "tokenizers", "matplotlib")},
        "leakylab_commit": _git_commit(),
        "executable": sys.executable,
    }
