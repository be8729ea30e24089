"""``python -m apps.compare --config configs/compare/<preset>.yaml [key=value ...]``.

Runs the matrix (skipping complete cells), then writes the report. ``--report-only`` rewrites
the report from whatever cells exist; ``--dry-run`` prints the matrix and its commands.
``--export`` also mirrors every complete cell's small records into the preset's findings folder
(as each cell lands) and writes the report there: evidence to commit. ``--report-only`` reads a
cell from those records when its run directory is absent or unfinished (a fresh clone), and then
rewrites the findings folder's report in place.
Cells run with this interpreter, or the one named by the environment variable
``LEAKYLAB_COMPARE_PYTHON`` (e.g. another virtual environment's python), on this machine — each
on a GPU slot of its own where there are GPUs (``placement.py``) — or, with ``executor: ray``, as
tasks on a Ray cluster (``ray_exec.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from apps.compare.config import CompareConfig, load_preset
from apps.compare.environment import environment
from apps.compare.executors import Executor, LocalExecutor, detect_gpus
from apps.compare.export import export_cells, pick_sources, record_of, records_root
from apps.compare.matrix import Cell, build_matrix, check_cells
from apps.compare.placement import (Slot, SlotPool, cells_at_a_time, describe_pool, device_ids, env_prefix, plan,
                                    primed_at_start)
from apps.compare.report import verdict_line, write_report
from apps.compare.runner import run_matrix
from common.appspec import get_app
from common.errors import UserError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m apps.compare",
        description="Run an A/B matrix (app × variant × seed) of ordinary training runs, resumably, and write "
                    "report.md, report.html and summary.json.")
    p.add_argument("--config", required=True, help="preset file (configs/compare/*.yaml)")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. jobs=1 seeds=[0,1]")
    p.add_argument("--report-only", action="store_true", help="do not run cells; write the report from what exists (a cell's run directory, else "
                        "its record in the findings folder, whose report is then rewritten in place)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the matrix, where each cell would run and the cells' commands; run nothing")
    p.add_argument("--export", action="store_true",
                   help="mirror every complete cell's small records (never weights or checkpoints) and the report "
                        "into the preset's findings folder (default findings/<preset stem>), to commit; "
                        "with --report-only nothing runs first")
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
    cores = os.cpu_count() or 1
    gpus = detect_gpus() if cfg.executor == "local" else 0
    jobs, lowered = cells_at_a_time(cfg.jobs, cores, cfg.threads, gpus, cfg.cells_per_gpu)
    devices = device_ids(gpus, os.environ.get("CUDA_VISIBLE_DEVICES"))
    slots = SlotPool(gpus, cfg.cells_per_gpu, cfg.threads, devices) if gpus else None
    if lowered and not args.report_only:
        print(f"note: {lowered}")
    records = records_root(cfg.findings)
    if args.dry_run:
        _dry_run(cfg, cells, records, jobs, cores, slots)
        return 0
    failed = []
    if not args.report_only:
        guesses = {name: s.seconds_per_cell for name, s in cfg.studies.items()}
        python = os.environ.get("LEAKYLAB_COMPARE_PYTHON") or sys.executable
        on_done = (lambda cell: _export([cell], records, quiet=True)) if args.export else None
        to_run = list(cells)
        if args.export:  # a preset completed over several sittings: committed cells are not run again
            recorded = [c for c in cells if not c.is_complete() and record_of(c, records).is_complete()]
            if recorded:
                print(f"{len(recorded)} cell(s) complete in their records under {records} (an earlier sitting) "
                      "are not run again; delete a cell's record folder to re-run it")
                to_run = [c for c in cells if c not in recorded]
        executor: Executor
        if cfg.executor == "ray":
            from apps.compare.ray_exec import RayExecutor  # Ray is imported only when asked for

            executor = RayExecutor(cfg.ray_address, cfg.threads, cfg.cells_per_gpu, Path(cfg.out), cfg.jobs, python,
                                   say=lambda m: print(m, flush=True))
        else:
            executor = LocalExecutor(jobs, cfg.threads, python, slots)
        outcomes = run_matrix(to_run, Path(cfg.out), guesses, jobs, cfg.threads, python=python,
                              reevaluate=args.reevaluate, on_done=on_done, executor=executor)
        failed = [o.cell.key for o in outcomes if not o.ok]
    dest, read_from = cfg.report, None
    if args.export:
        _export(cells, records)
        dest, read_from = cfg.findings, records
    elif args.report_only and records.is_dir() and any(sources := pick_sources(cells, records)):
        dest, read_from = cfg.findings, records  # a fresh clone: regenerate the committed report in place
        unrecorded = [c.key for c, s in zip(cells, sources)
                      if s is None and c.is_complete() and not record_of(c, records).is_complete()]
        if unrecorded:
            print(f"note: {len(unrecorded)} complete cell(s) under {cfg.out} have no record in {records}; "
                  "add them with --export --report-only", file=sys.stderr)
    env = environment(cfg.threads, jobs)
    if slots is not None:
        env["cells_per_gpu"] = cfg.cells_per_gpu
    if cfg.executor == "ray":  # the cells ran on the cluster's nodes; each cell.json names its node
        env["executor"] = f"ray ({cfg.ray_address or 'a local cluster'})"
        env.pop("parallel_cells")
    summary = write_report(cfg, cells, env, args.config, dest, read_from)
    done = sum(r["status"] == "complete" for r in summary["cells"])
    recorded = sum(r["source"] == "record" for r in summary["cells"])
    source = f", {recorded} read from the records in {records}" if recorded else ""
    print(f"report: {dest}/report.html, report.md, summary.json ({done}/{len(cells)} cells complete{source})")
    if args.export:
        print("README: python -m apps.compare.findings rewrites its 'What we found' from findings/*/summary.json")
    for w in summary["code"]["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    for s in summary["studies"]:
        if s.get("dead_units"):
            print(f"  {s['title']}: dead-unit story {s['dead_units']['verdict']}")
        for c in s["comparisons"]:
            print(f"  {s['title']}: {verdict_line(s, c)}")
    if failed:
        print(f"{len(failed)} cell(s) failed: {', '.join(failed)}; see their train.log/eval.log and re-run "
              "the same command to retry them", file=sys.stderr)
        return 1
    return 0


def _dry_run(cfg: CompareConfig, cells: Sequence[Cell], records: Path, jobs: int, cores: int,
             slots: SlotPool | None) -> None:
    """Print each cell, its state, where it would run (on a GPU machine) and its commands."""
    def state(c: Cell) -> str:
        if c.is_complete():
            return "complete"
        return "to run; complete in its record" if record_of(c, records).is_complete() else "to run"

    where: dict[int, Slot] = {}
    if cfg.executor == "ray":
        gpu = f"1/{cfg.cells_per_gpu} of a GPU where the cluster has GPUs" if cfg.cells_per_gpu > 1 else \
            "a GPU where the cluster has GPUs"
        print(f"executor: ray ({cfg.ray_address or 'a local cluster started for this run'}): each cell a Ray task "
              f"asking for {cfg.threads} CPU(s) and {gpu}; Ray picks its node")
    elif slots is not None:
        print(describe_pool(slots, jobs, cores))
        print("# each cell takes the first free slot; the slots below assume every cell takes its study's "
              "seconds_per_cell")
        guesses = {name: s.seconds_per_cell for name, s in cfg.studies.items()}
        to_run = [c for c in cells if state(c) == "to run"]
        primed = primed_at_start(cells, lambda c: c.study, lambda c: c.is_complete(),
                                 lambda c: get_app(c.app).shares_disk_cache)
        where = {id(c): slot for c, slot in plan(to_run, lambda c: guesses[c.study], lambda c: c.study,
                                                  slots, jobs, primed)}
    for c in cells:
        slot = where.get(id(c))
        print(f"# {c.key} ({state(c)})" + (f" → {slot.describe()}" if slot is not None else ""))
        for cmd in c.commands(cfg.threads):
            print((env_prefix(slot.env()) if slot is not None else "") + cmd)


def _export(cells: Sequence[Cell], records: Path, quiet: bool = False) -> None:
    """Mirror the complete cells' records; says what it did unless ``quiet`` (a cell landing: the
    export at the end, over every cell, reports and warns once)."""
    got = export_cells(cells, records, warn=(lambda w: None) if quiet else (lambda w: print(w, file=sys.stderr)))
    if not quiet:
        print(f"export: {got.cells} complete cell(s) → {records} ({len(got.written)} file(s) written, "
              f"{len(got.unchanged)} unchanged, {len(got.skipped)} skipped)")
