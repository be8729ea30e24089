"""Examples side by side: what the variants of a study made, from one seed, as the app shows it.

The app's description decides what an example is (an image per run, or a table of inputs and
outputs) and reads it from the run directories; this module picks the seed, hands over one
finished run per variant, and lays the answer out as report blocks.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from apps.compare.collect import CellData
from apps.compare.doc import Block, Gallery, Heading, Image, Table
from common.appspec import ExampleRun, get_app


def example_runs(study: dict, cells: list[CellData]) -> list[ExampleRun]:
    """One complete run per variant (in the study's order), all from the lowest complete seed."""
    done = [c for c in cells if c.complete]
    if not done:
        return []
    seed = min(c.cell.seed for c in done)
    runs = []
    for v in study["variants"]:
        c = next((c for c in done if c.cell.variant == v["name"] and c.cell.seed == seed), None)
        if c is not None:
            runs.append(ExampleRun(v["name"], seed, c.run_dir, dict(c.eval or {}), c.config))
    return runs


def example_blocks(study: dict, cells: list[CellData], fig_dir: Path, k: int) -> list[Block]:
    """The study's examples as report blocks; images are copied into the report's figures."""
    app = get_app(study["app"])
    runs = example_runs(study, cells)
    if app.examples is None or not runs:
        return []
    ex = app.examples(runs, k)
    if ex is None:
        return []
    out: list[Block] = [Heading(3, ex.heading)]
    if ex.images:
        seed = runs[0].seed
        imgs = []
        for variant, src in ex.images:
            dst = fig_dir / f"{study['name']}_samples_{variant}{src.suffix or '.png'}"
            shutil.copyfile(src, dst)
            imgs.append(Image(dst, f"{variant} (seed {seed})"))
        out.append(Gallery(imgs, ex.caption))
    if ex.rows:
        out.append(Table(list(ex.header), [list(r) for r in ex.rows], ex.caption if not ex.images else ""))
    return out if len(out) > 1 else []
