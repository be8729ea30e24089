"""``python -m apps.compare --config configs/compare/<preset>.yaml [key=value ...]``.

Runs the matrix (skipping complete cells), then writes the report. ``--report-only`` rewrites
the report from whatever cells exist; ``--dry-run`` prints the matrix and its commands.
Cells run with this interpreter, or the one named by the environment variable
``LEAKYLAB_COMPARE_PYTHON`` (e.g. another virtual environment's python).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from apps.compare.config import load_preset
from apps.compare.environment import environment
from apps.compare.matrix import build_matrix, check_cells
from apps.compare.report import write_report
from apps.compare.runner import run_matrix
from common.errors import UserError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m apps.compare",
        description="Run an A/B matrix (app × variant × seed) of ordinary training runs, resumably, and write "
                    "report.md, report.html and summary.json.")
    p.add_argument("--config", required=True, help="preset file (configs/compare/*.yaml)")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. jobs=1 seeds=[0,1]")
    p.add_argument("--report-only", action="store_true", help="do not run cells; write the report from what exists")
    p.add_argument("--dry-run", action="store_true", help="print the matrix and the cells' commands; run nothing")
    p.add_argument("--reevaluate", action="store_true",
                   help="evaluate complete cells again (the app's evaluation changed); training is not repeated")
    return p


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    cfg = load_preset(args.config, args.overrides)
    for name, study in cfg.studies.items():
        if not os.path.isfile(study.config):
            raise UserError(f"config key 'studies.{name}.config': app config '{study.config}' does not exist "
                            "(paths are relative to the folder you run from, normally the project root)")
    cells = build_matrix(cfg)
    check_cells(cells)
    jobs = cfg.jobs or max(1, (os.cpu_count() or 1) // cfg.threads)
    if args.dry_run:
        for c in cells:
            state = "complete" if c.is_complete() else "to run"
            print(f"# {c.key} ({state})")
            for cmd in c.commands(cfg.threads):
                print(cmd)
        return 0
    failed = []
    if not args.report_only:
        guesses = {name: s.seconds_per_cell for name, s in cfg.studies.items()}
        python = os.environ.get("LEAKYLAB_COMPARE_PYTHON") or sys.executable
        outcomes = run_matrix(cells, Path(cfg.out), guesses, jobs, cfg.threads, python=python,
                              reevaluate=args.reevaluate)
        failed = [o.cell.key for o in outcomes if not o.ok]
    summary = write_report(cfg, cells, environment(cfg.threads, jobs), args.config)
    done = sum(r["status"] == "complete" for r in summary["cells"])
    print(f"report: {cfg.report}/report.html, report.md, summary.json ({done}/{len(cells)} cells complete)")
    for s in summary["studies"]:
        if s.get("dead_units"):
            print(f"  {s['title']}: dead-unit story {s['dead_units']['verdict']}")
        for c in s["comparisons"]:
            print(f"  {s['title']}: {c['variant']} vs {c['baseline']} on {c['metric']}: {c['sentence']}")
    if failed:
        print(f"{len(failed)} cell(s) failed: {', '.join(failed)}; see their train.log/eval.log and re-run "
              "the same command to retry them", file=sys.stderr)
        return 1
    return 0
