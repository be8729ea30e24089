"""Committed evidence: every complete cell's small records, mirrored beside the report.

A comparison's run directories are large (checkpoints, weights) and stay out of git, yet a report
is only as good as the numbers it can be rebuilt from. ``--export`` therefore copies, for every
complete cell, exactly the files the report reads — never weights, checkpoints, tokenizers,
TensorBoard logs or training logs — into ``<findings>/cells/<study>/<variant>/seed<k>/`` in the
cell's own layout (``cell.json`` beside ``run/``). ``--report-only`` then rebuilds the report
from those records on a fresh clone, preferring a cell's run directory wherever it is complete.

Exporting is idempotent and additive: a file is rewritten only when its content changed, and the
records of cells not (or no longer) complete under ``out`` are kept, so a long preset can be
exported cell by cell over several sittings.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence

from apps.compare.matrix import CELL_FILE, Cell

CELLS = "cells"
# What the report reads of a run directory (docs/run-directory.md).
RUN_RECORDS = ("leakylab.json", "config.yaml", "eval.json", "metrics.jsonl", "probes.jsonl")
# The final sample grid, the only image the examples of an image app show.
GRID = "samples/final.png"
# Whatever a record names, these are never copied: weights and pickles are big and can run code.
NEVER = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")
MAX_BYTES = 2_000_000  # a record above this is skipped with a warning: git is no place for it


def records_root(findings: str | Path) -> Path:
    """The folder holding the cells' records inside a findings folder."""
    return Path(findings) / CELLS


def record_of(cell: Cell, root: Path) -> Cell:
    """``cell`` as its records lie under ``root`` (same study/variant/seed layout)."""
    return dataclasses.replace(cell, dir=root / cell.study / cell.variant / f"seed{cell.seed}")


def _safe(name: str) -> bool:
    p = PurePosixPath(name)
    return bool(name) and not p.is_absolute() and ".." not in p.parts and not name.endswith(NEVER)


def example_files(cell: Cell) -> list[str]:
    """Run-relative files the apps' examples read that exist in this run: the final sample grid,
    and the decoded outputs of the evaluated split (the file ``eval.json`` names under
    ``hypotheses``, or the fallback names an app's examples also look for).

    These names follow the run-directory contract (docs/run-directory.md) rather than any one
    app; an app whose examples read other files shows no examples when rebuilt from records."""
    rec = cell.eval_record() or {}
    split = str(rec.get("split", "test"))
    names = [GRID]
    if isinstance(rec.get("hypotheses"), str):
        names.append(rec["hypotheses"])
    names += [f"hypotheses.{split}.txt", f"{split}.hyp", "hypotheses.txt"]
    out: list[str] = []
    for name in names:
        if _safe(name) and name not in out and (cell.run_dir / name).is_file():
            out.append(name)
    return out


def record_files(cell: Cell) -> list[str]:
    """Cell-relative paths of the records to mirror (those that exist)."""
    names = [CELL_FILE] + [f"run/{n}" for n in RUN_RECORDS] + [f"run/{n}" for n in example_files(cell)]
    return [n for n in names if (cell.dir / n).is_file()]


@dataclass
class Exported:
    """What exporting did: files written, files already up to date, files refused (with why)."""

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    cells: int = 0

    def add(self, other: "Exported") -> None:
        self.written += other.written
        self.unchanged += other.unchanged
        self.skipped += other.skipped
        self.cells += other.cells


def _same(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()
    except OSError:
        return False


def export_cell(cell: Cell, root: Path, max_bytes: int = MAX_BYTES) -> Exported:
    """Mirror one complete cell's records under ``root``; an incomplete cell exports nothing."""
    done = Exported()
    if not cell.is_complete():
        return done
    rec = record_of(cell, root)
    for name in record_files(cell):
        src, dst = cell.dir / name, rec.dir / name
        size = src.stat().st_size
        if size > max_bytes:
            done.skipped.append(f"{cell.key}/{name} ({size / 1e6:.1f} MB > {max_bytes / 1e6:.0f} MB)")
            continue
        if dst.is_file() and _same(src, dst):
            done.unchanged.append(f"{cell.key}/{name}")
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(dst.name + ".tmp")
        tmp.write_bytes(src.read_bytes())
        os.replace(tmp, dst)  # a record on disk is whole or absent
        done.written.append(f"{cell.key}/{name}")
    done.cells = 1
    return done


def export_cells(cells: Sequence[Cell], root: Path, warn: Callable[[str], None] = print,
                 max_bytes: int = MAX_BYTES) -> Exported:
    """Mirror every complete cell's records under ``root``; warns once per file skipped."""
    total = Exported()
    for cell in cells:
        got = export_cell(cell, root, max_bytes)
        for what in got.skipped:
            warn(f"warning: not exported, too large for committed evidence: {what}")
        total.add(got)
    return total


def pick_sources(cells: Sequence[Cell], root: Path | None) -> list[Path | None]:
    """Per cell, the folder to read it from: None for its own run directory (when it is complete
    there, or when it has no complete record either), else its record folder under ``root``."""
    out: list[Path | None] = []
    for cell in cells:
        rec = record_of(cell, root) if root is not None else None
        use = rec is not None and not cell.is_complete() and rec.is_complete()
        out.append(rec.dir if use and rec is not None else None)
    return out
