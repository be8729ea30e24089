"""The pieces ``bench/gpu_check.py``'s parts share: what a part is given, what it returns, how a
target is judged, and how the report's Markdown is put together and written.

A part is a function ``(Context) -> Section``. It prints a line per measurement as it goes, raises
:class:`Skipped` when what it needs is absent (its data), and lets any other exception escape:
the driver records it in the report and goes on with the next part.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence


class Skipped(Exception):
    """A part (or a cell of it) that could not run here, with the one-line reason the report gives."""


@dataclass
class Context:
    """What every part is told: smoke or not, the torch device, a scratch folder, a progress printer."""

    smoke: bool
    device: str  # "cuda" on the GPU machine, "cpu" in smoke mode
    tmp: Path  # removed when the command ends
    say: Callable[[str], None] = print


@dataclass
class Section:
    """A part's body in the report (Markdown lines) and each of its targets, met or not."""

    lines: list[str] = field(default_factory=list)
    targets: list[bool] = field(default_factory=list)
    failed_cells: list[str] = field(default_factory=list)  # cells that failed while the part went on

    def judge(self, value: float | None, bound: float, at_least: bool = True) -> str:
        """``value`` against ``bound`` as a cell (``PASS (0.97 ≥ 0.95)``), counted in ``targets``;
        ``None`` (not measured) is shown as ``n/a`` and counts neither way."""
        if value is None:
            return "n/a"
        met = value >= bound if at_least else value <= bound
        self.targets.append(met)
        sign = (">=" if met else "<") if at_least else ("<=" if met else ">")
        return f"{'PASS' if met else 'FAIL'} ({value:.3g} {sign} {bound:g})"


def table(head: Sequence[str], rows: Sequence[Sequence[object]], right_from: int | None = None) -> list[str]:
    """A Markdown table; columns from ``right_from`` on (if given) are right-aligned (numbers)."""
    align = ["---:" if right_from is not None and i >= right_from else "---" for i in range(len(head))]
    return ["| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |"] + [
        "| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def fmt(value: float, digits: int = 3) -> str:
    """A figure with ``digits`` significant digits (no exponent down to 1e-4), thousands separators
    for large ones."""
    if abs(value) >= 10 ** digits:
        return f"{value:,.0f}"
    if value == 0 or abs(value) < 1e-4:
        return f"{value:.{digits}g}"
    return f"{float(f'{value:.{digits}g}'):f}".rstrip("0").rstrip(".")


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary name, so a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
