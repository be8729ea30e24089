"""Typed preset of the comparison runner (``configs/compare/*.yaml``).

A preset names studies; a study is one app trained from one of its own config files with a
baseline and some variants, each variant a plain dict of that app's dotted config overrides
(``{model.activation: leaky_relu, model.act_params.alpha: 0.2}``) — nothing is parsed out of the
variant's name. Every (study, variant, seed) is a cell: an ordinary run directory made by the
app's own ``train`` and ``evaluate`` commands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from apps import load_apps
from common.config import ConfigError, load_config, require

EXECUTORS = ("local", "ray")

# Variant names become directory names; keep them portable and unambiguous.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def delta_value(spec: Any) -> tuple[float, bool] | None:
    """A preset's smallest effect as (value, relative): ``1.0`` → (1.0, False), ``"5%"`` →
    (0.05, True); None when it is not a positive number or percentage."""
    if isinstance(spec, bool):
        return None
    if isinstance(spec, (int, float)):
        return (float(spec), False) if spec > 0 else None
    if isinstance(spec, str) and spec.strip().endswith("%"):
        try:
            v = float(spec.strip()[:-1]) / 100
        except ValueError:
            return None
        return (v, True) if v > 0 else None
    return None


@dataclass
class StudyConfig:
    """One app, one base config, a baseline and its variants."""

    app: str = ""
    """Which app trains the cells: the name of a registered app (see apps/__init__.py)."""
    config: str = ""
    """The app's own config file every cell starts from (configs/<app>/<name>.yaml)."""
    steps: int = 1000
    """Training steps of every cell (passed as steps=)."""
    baseline: str = "relu"
    """Name of the variant every other variant is compared with (paired by seed)."""
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Variant name → dotted overrides of the app config; the baseline is one of them."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Overrides applied to every variant of this study (before the variant's own)."""
    metrics: list[str] = field(default_factory=list)
    """Metrics compared with the baseline (empty = the headline metrics of the app's description:
    its quality scores and the dead fraction of the parts where the activation changes)."""
    seconds_per_cell: float = 60.0
    """Estimated seconds of one cell (train + evaluate) for the first time estimate; replaced by
    measured cell times as cells finish."""
    eval_args: list[Union[str, int, float]] = field(default_factory=list)
    """Extra arguments of the app's evaluate command (e.g. [--split, test])."""
    lr_sweep: dict[str, list[float]] = field(default_factory=dict)
    """Optional learning-rate sweep: config key → values (several keys move together, so their
    lists must have equal length). Every variant, baseline included, is run at every value, and
    each variant is compared with the baseline at the same value — the defaults were tuned for
    ReLU, and this shows whether another activation only needs another learning rate."""
    deltas: dict[str, Union[float, str]] = field(default_factory=dict)
    """Smallest effect of interest per metric, overriding the app's default: a number in the
    metric's units (``bleu: 0.5``) or a share of the baseline's mean (``fid: "5%"``). A verdict
    of better/worse needs a difference at least this large; "equivalent" means within ±δ."""
    controls: dict[str, str] = field(default_factory=dict)
    """A/A controls: variant → the variant it computes the same function as (e.g. the fused
    kernel → plain LeakyReLU at the same α). Each is compared with that variant instead of the
    baseline; a control called better or worse is reported as a failed control."""
    title: str = ""
    """Heading of the study in the report (default: its name)."""

    def __post_init__(self) -> None:
        apps = load_apps()
        require(self.app in apps, "app", f"must name a registered app ({', '.join(apps)})", self.app)
        require(bool(self.config), "config", "must name the app's config file (configs/<app>/<name>.yaml)")
        require(self.steps >= 1, "steps", "must be >= 1", self.steps)
        require(bool(self.variants), "variants", "must name at least the baseline variant")
        for name in self.variants:
            require(bool(_NAME_RE.match(name)), f"variants.{name}",
                    "variant names may hold letters, digits and . _ + - only (they name directories)")
        require(self.baseline in self.variants, "baseline",
                f"must be one of the variants ({', '.join(self.variants)})", self.baseline)
        require(self.seconds_per_cell > 0, "seconds_per_cell", "must be > 0", self.seconds_per_cell)
        for key in ("steps", "seed", "out"):
            require(key not in self.overrides, f"overrides.{key}", "is set by the runner; use the study's own keys")
            for name, ov in self.variants.items():
                require(key not in ov, f"variants.{name}.{key}", "is set by the runner, not by a variant")
        for key, d in self.deltas.items():
            require(delta_value(d) is not None, f"deltas.{key}",
                    "must be a positive number or a positive percentage such as \"5%\"", d)
        for name, same_as in self.controls.items():
            require(name in self.variants and name != self.baseline, f"controls.{name}",
                    "must be a variant other than the baseline", name)
            require(same_as in self.variants and same_as != name, f"controls.{name}",
                    f"must name another variant ({', '.join(self.variants)})", same_as)
        lengths = {len(v) for v in self.lr_sweep.values()}
        require(len(lengths) <= 1, "lr_sweep", "lists must all have the same length", self.lr_sweep)
        require(all(n >= 1 for n in lengths), "lr_sweep", "lists must not be empty", self.lr_sweep)
        for key, values in self.lr_sweep.items():
            require(all(v > 0 for v in values), f"lr_sweep.{key}", "learning rates must be > 0", values)


@dataclass
class CompareConfig:
    """A comparison preset: studies × variants × seeds, and how to run and report them."""

    title: str = ""
    """Title of the report (default: the preset's file stem)."""
    out: str = ""
    """Root of the cells' run directories; empty means runs/compare/<preset stem>."""
    report: str = ""
    """Folder of report.md, report.html and summary.json; empty means reports/<preset stem>."""
    findings: str = ""
    """Folder of the committed evidence that ``--export`` writes (the report plus every complete
    cell's small records under cells/); empty means findings/<preset stem>."""
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    """Seeds of every variant; the same seed pairs a variant with its baseline."""
    jobs: int = 0
    """Cells run in parallel (0 = one per ``threads`` CPU cores; with GPUs, and on a Ray cluster, as
    many as the GPU slots and the cores allow, which also cap a larger value)."""
    threads: int = 1
    """Threads per cell process (OMP_NUM_THREADS and torch's intra-op threads)."""
    cells_per_gpu: int = 1
    """Cells sharing one GPU at a time, where there are GPUs: each cell's processes see only the
    GPU of its slot (CUDA_VISIBLE_DEVICES), and no more than GPUs × cells_per_gpu cells run at once
    (on a Ray cluster each cell asks for 1/cells_per_gpu of a GPU). Ignored without GPUs."""
    executor: str = "local"
    """Where the cells run: ``local`` (this machine) or ``ray`` (tasks on a Ray cluster, needing the
    ``[cluster]`` extra; the run directories must then be on storage every node sees)."""
    ray_address: Optional[str] = None
    """With ``executor: ray``, the cluster: ``auto`` (one already running, e.g. ``ray start
    --head``), an address such as ``HOST:6379``, or empty for a local one started for this run."""
    alpha: float = 0.05
    """Family-wise error rate of the Holm-corrected tests."""
    power: float = 0.8
    """Power at which the minimum detectable effect is quoted."""
    examples: int = 5
    """Rows of an app's example table shown side by side (the same inputs for every variant)."""
    note: str = ""
    """Free text put near the top of the report (what this preset is for)."""
    studies: dict[str, StudyConfig] = field(default_factory=dict)
    """Study name → study."""

    def __post_init__(self) -> None:
        require(bool(self.seeds), "seeds", "must list at least one seed")
        require(len(set(self.seeds)) == len(self.seeds), "seeds", "must not repeat a seed", self.seeds)
        require(all(s >= 0 for s in self.seeds), "seeds", "must be >= 0", self.seeds)
        require(self.jobs >= 0, "jobs", "must be >= 0 (0 = as many as the cores allow)", self.jobs)
        require(self.threads >= 1, "threads", "must be >= 1", self.threads)
        require(self.cells_per_gpu >= 1, "cells_per_gpu", "must be >= 1", self.cells_per_gpu)
        require(self.executor in EXECUTORS, "executor", f"must be one of {', '.join(EXECUTORS)}", self.executor)
        require(0 < self.alpha < 1, "alpha", "must be in (0, 1)", self.alpha)
        require(0 < self.power < 1, "power", "must be in (0, 1)", self.power)
        require(self.examples >= 0, "examples", "must be >= 0", self.examples)
        require(bool(self.studies), "studies", "must hold at least one study")
        for name in self.studies:
            require(bool(_NAME_RE.match(name)), f"studies.{name}",
                    "study names may hold letters, digits and . _ + - only (they name directories)")


def load_preset(path: str | Path, overrides: Sequence[str] = ()) -> CompareConfig:
    """Load a preset file plus ``key=value`` overrides; resolves the default folders."""
    cfg = load_config(CompareConfig, path, overrides, app="compare")  # out → runs/compare/<stem>
    stem = Path(path).stem
    if not cfg.report:
        cfg.report = str(Path("reports") / stem)
    if not cfg.findings:
        cfg.findings = str(Path("findings") / stem)
    if not cfg.title:
        cfg.title = stem
    return cfg


__all__ = ["CompareConfig", "ConfigError", "StudyConfig", "load_preset"]
