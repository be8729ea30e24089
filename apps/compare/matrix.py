"""The comparison matrix: every (study, variant, seed) cell, its folder and its commands.

A cell folder holds the app's run directory (``run/``, made and resumed by the app itself) and
the runner's own bookkeeping beside it — ``train.log``, ``eval.log`` and ``cell.json`` (timings,
commands, exit status) — so the run directory stays exactly what a user's hand-run would make
(the run-directory code refuses to create a run in a non-empty folder).
"""

from __future__ import annotations

import json
import math
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from apps.compare.config import CompareConfig, StudyConfig
from common.appspec import get_app
from common.config import load_config, parse_override
from common.errors import UserError

CELL_FILE = "cell.json"


def render_value(value: Any) -> str:
    """A value as the app's ``key=value`` parser reads it back (YAML scalar or flow collection)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else {math.inf: ".inf", -math.inf: "-.inf"}.get(value, ".nan")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        # A plain string stays plain unless YAML would read it as something else ("1e-3", "true").
        if value and parse_override(f"k={value}")[1] == value:
            return value
        return json.dumps(value)
    return yaml.safe_dump(value, default_flow_style=True, width=1 << 30).strip()


@dataclass(frozen=True)
class Variant:
    """One arm of a study: its overrides and the variant it is compared with."""

    name: str
    overrides: tuple[tuple[str, Any], ...]
    baseline: str  # name of the baseline arm (itself for the baseline)
    group: str  # arms of one group are compared with each other ("" or the sweep point)

    @property
    def is_baseline(self) -> bool:
        return self.name == self.baseline


def flatten(overrides: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested override dicts as dotted leaf keys: ``{model: {g_act: relu}}`` → ``{model.g_act: relu}``.

    Overrides set leaves, never whole sections — a variant written ``{model: {g_act: relu}}``
    must not wipe the rest of the app config's ``model`` section. An empty dict is a value
    (``model.act_params: {}`` clears the activation's parameters).
    """
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, full))
        else:
            out[full] = value
    return out


def study_variants(study: StudyConfig) -> list[Variant]:
    """The study's arms, expanding an optional learning-rate sweep (baseline first)."""
    order = [study.baseline] + [v for v in study.variants if v != study.baseline]
    base = [(name, {**flatten(study.overrides), **flatten(study.variants[name])}) for name in order]
    def against(name: str) -> str:  # an A/A control is compared with its twin, the rest with the baseline
        return study.controls.get(name, study.baseline)

    if not study.lr_sweep:
        return [Variant(n, tuple(ov.items()), against(n), "") for n, ov in base]
    keys = list(study.lr_sweep)
    points = list(zip(*(study.lr_sweep[k] for k in keys)))
    out = []
    for point in points:
        tag = "lr" + "_".join(f"{v:g}" for v in point)
        for name, ov in base:
            full = {**ov, **dict(zip(keys, point))}
            out.append(Variant(f"{name}@{tag}", tuple(full.items()), f"{against(name)}@{tag}", tag))
    return out


@dataclass(frozen=True, eq=False)  # identity equality/hash: override values may be dicts
class Cell:
    """One run of the matrix."""

    study: str
    app: str
    train_module: str  # the app's commands, from its description
    evaluate_module: str
    variant: str
    baseline: str
    group: str
    seed: int
    steps: int
    app_config: str
    overrides: tuple[tuple[str, Any], ...]
    eval_args: tuple[str, ...]
    dir: Path

    @property
    def key(self) -> str:
        return f"{self.study}/{self.variant}/seed{self.seed}"

    @property
    def run_dir(self) -> Path:
        return self.dir / "run"

    def train_args(self) -> list[str]:
        """The ``key=value`` overrides of the train command: the runner's keys, then the variant's."""
        args = [f"out={self.run_dir}", f"seed={self.seed}", f"steps={self.steps}"]
        return args + [f"{k}={render_value(v)}" for k, v in self.overrides]

    def train_argv(self, python: str = sys.executable) -> list[str]:
        return [python, "-m", self.train_module, "--config", self.app_config, *self.train_args()]

    def eval_argv(self, python: str = sys.executable) -> list[str]:
        return [python, "-m", self.evaluate_module, "--run", str(self.run_dir), *self.eval_args]

    def commands(self, threads: int = 1) -> list[str]:
        """The shell commands that reproduce this cell by hand (from the project root)."""
        env = f"OMP_NUM_THREADS={threads} "
        return [env + shlex.join(argv) for argv in (self.train_argv("python"), self.eval_argv("python"))]

    def eval_record(self) -> dict | None:
        """``eval.json`` of the run, or None when missing or unreadable."""
        try:
            data = json.loads((self.run_dir / "eval.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def is_complete(self, ignore_bookkeeping: bool = False) -> bool:
        """Complete = the run's eval.json exists, was made at the cell's final step, and (when the
        runner made it) with the preset's current evaluate arguments — so changing ``eval_args``
        (another extractor, another split) re-evaluates the cells without retraining them."""
        rec = self.eval_record()
        if rec is None or rec.get("step") != self.steps:
            return False
        if ignore_bookkeeping:
            return True
        book = self.bookkeeping() or {}
        return book.get("eval_args", list(self.eval_args)) == list(self.eval_args)

    def bookkeeping(self) -> dict | None:
        """The runner's ``cell.json`` (timings, commands, exit status), if any."""
        try:
            data = json.loads((self.dir / CELL_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


def build_matrix(cfg: CompareConfig, root: Path | None = None) -> list[Cell]:
    """All cells of the preset, ordered seed-major so partial results stay balanced.

    Seed-major order means that after the first ``#variants`` cells every variant has its first
    seed, so a run cut short still yields paired comparisons.
    """
    root = Path(cfg.out) if root is None else root
    per_seed: dict[int, list[Cell]] = {s: [] for s in cfg.seeds}
    for study_name, study in cfg.studies.items():
        spec = get_app(study.app)
        for var in study_variants(study):
            for seed in cfg.seeds:
                per_seed[seed].append(Cell(
                    study=study_name, app=study.app, train_module=spec.train_module,
                    evaluate_module=spec.evaluate_module, variant=var.name, baseline=var.baseline,
                    group=var.group, seed=seed, steps=study.steps, app_config=study.config,
                    overrides=var.overrides, eval_args=tuple(str(a) for a in study.eval_args),
                    dir=root / study_name / var.name / f"seed{seed}",
                ))
    # Interleave studies inside each seed so parallel slots start on different apps.
    cells: list[Cell] = []
    for seed in cfg.seeds:
        by_study: dict[str, list[Cell]] = {}
        for c in per_seed[seed]:
            by_study.setdefault(c.study, []).append(c)
        queues = list(by_study.values())
        while any(queues):
            for q in queues:
                if q:
                    cells.append(q.pop(0))
    return cells


def check_cells(cells: list[Cell]) -> None:
    """Load every variant's app config exactly as its train command will, before anything runs.

    A typo in a preset's override would otherwise surface as a failed cell minutes into the
    matrix; here it is one line naming the study, the variant and the key.
    """
    seen: set[tuple[str, str]] = set()
    for c in cells:
        if (c.study, c.variant) in seen:
            continue
        seen.add((c.study, c.variant))
        schema = get_app(c.app).schema()  # imported only now: importing an app is slow
        try:
            load_config(schema, c.app_config, c.train_args(), app=c.app)
        except UserError as exc:
            raise UserError(f"study '{c.study}', variant '{c.variant}': {exc}") from None
