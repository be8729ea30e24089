"""Reads what the cells left on disk: eval.json, config.yaml, metrics.jsonl, probes.jsonl, timings.

Reading is forgiving on purpose: a report of a half-finished comparison is still useful, so a
missing or torn file makes a cell partial, never the report fail. What else an app leaves
(images, decoded outputs) its own description reads, when the report asks it for examples.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from apps.compare.matrix import CELL_FILE, Cell
from common.config import yaml_load


@dataclass
class CellData:
    """One cell as read back from disk: from its run directory, or from its committed records."""

    cell: Cell
    eval: dict | None = None
    config: dict | None = None
    metrics: list[dict] = field(default_factory=list)
    probes: list[dict] = field(default_factory=list)
    timing: dict | None = None
    source: Path | None = None  # the folder read when not the cell's own (its records in findings/)

    @property
    def run_dir(self) -> Path:
        """Where the run's files were read from (examples read theirs there too)."""
        return (self.source / "run") if self.source is not None else self.cell.run_dir

    @property
    def complete(self) -> bool:
        return self.eval is not None and self.eval.get("step") == self.cell.steps


def read_jsonl(path: Path) -> list[dict]:
    """JSONL records; unreadable lines (a run killed mid-write) are skipped."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_cell(cell: Cell, source: Path | None = None) -> CellData:
    """Everything the report needs from one cell folder: the cell's own, or ``source`` laid out
    like it (its records); the cell keeps its own folder and commands either way."""
    data = CellData(cell, source=source)
    run = data.run_dir
    data.eval = _read_json(run / "eval.json")
    try:
        cfg = yaml_load((run / "config.yaml").read_text(encoding="utf-8"))
        data.config = cfg if isinstance(cfg, dict) else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):  # a damaged config only costs examples
        data.config = None
    data.metrics = read_jsonl(run / "metrics.jsonl")
    data.probes = read_jsonl(run / "probes.jsonl")
    data.timing = _read_json((source if source is not None else cell.dir) / CELL_FILE)
    return data


def finite(x: Any) -> float | None:
    """``x`` as a float when it is a finite number, else None."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def final_probes(probes: list[dict]) -> dict[tuple[str, str], dict]:
    """The last record of every (model, layer)."""
    last: dict[tuple[str, str], dict] = {}
    for rec in probes:
        key = (str(rec.get("model", "")), str(rec.get("layer", "")))
        if key not in last or rec.get("step", 0) >= last[key].get("step", 0):
            last[key] = rec
    return last


def probe_models(probes: list[dict]) -> list[str]:
    """Probed models in first-seen order."""
    seen: dict[str, None] = {}
    for rec in probes:
        seen.setdefault(str(rec.get("model", "")), None)
    return list(seen)
