"""Assembles the report: summary.json, figures, and the blocks rendered to report.md / report.html.

All numbers come from :mod:`apps.compare.analysis`; this module decides what goes where.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from apps.compare import budget, plots
from apps.compare.analysis import analyse
from apps.compare.collect import CellData, read_cell
from apps.compare.config import CompareConfig
from apps.compare.doc import Block, Bullets, Code, Heading, Para, Table
from apps.compare.examples import example_blocks
from apps.compare.export import CELLS, pick_sources
from apps.compare.matrix import Cell, render_value
from apps.compare.report_html import render_html
from apps.compare.report_md import render_md
from apps.compare.stats import fmt, fmt_p

HOW_TO_READ = (
    "How to read this report. Seeds are the unit of replication: a variant and the baseline trained "
    "with the same seed share data order and initial noise, so each variant is compared with the baseline "
    "by the per-seed difference (variant − baseline), its mean with a 95% t-interval and a paired t-test. "
    "p-values are Holm-corrected across the variants of a study, metric by metric. Every metric has a "
    "smallest effect of interest δ (shown beside each verdict): a variant is 'better' or 'worse' only when "
    "its corrected p is below α and the difference is at least δ; 'equivalent within ±δ' when the 90% "
    "interval of the difference lies inside ±δ (two one-sided tests at α); otherwise 'inconclusive at this "
    "budget', with the minimum detectable effect MDE = (t(1−α/2, n−1) + t(power, n−1)) · sd(differences) / √n: "
    "the true difference these seeds would detect with the stated power. A budget check per study says "
    "whether the headline metrics had stopped improving; where they had not, the verdicts contrast learning "
    "speed at this budget, not final quality."
)
TUNED_FOR_RELU = (
    "The apps' default hyper-parameters (learning rates, β's, init scales) come from recipes tuned for ReLU "
    "networks, so a fixed-hyper-parameter comparison slightly favours the baseline. A preset can add a "
    "per-variant learning-rate sweep (lr_sweep: {config key: [values]} in a study): every variant, the "
    "baseline included, then runs at every value and is compared with the baseline at the same value."
)


def _interval(m: dict[str, Any]) -> tuple[str, str]:
    if m["low"] is None:
        return fmt(m["mean"]), "n/a (1 seed)" if m["n"] < 2 else "n/a"
    return fmt(m["mean"]), f"[{fmt(m['low'])}, {fmt(m['high'])}]"


def _label(study: dict, key: str) -> str:
    """A metric's label, with the extractor's name when its values depend on it."""
    m = next(m for m in study["metrics"] if m["key"] == key)
    ex = study.get("extractor")
    return m["label"] + (f" [{ex.get('name', '?')}]" if ex and m.get("by_extractor") else "")


def verdict_line(study: dict, c: dict) -> str:
    """One comparison in words, saying so when the study had not converged (learning speed)."""
    what = f"{c['variant']} vs {c['baseline']}" + (" (A/A control)" if c.get("control") else "")
    reading = budget.reading_of(study, c)
    speed = budget.qualifier(reading) + " — " if reading == budget.LEARNING_SPEED else ""
    gap = " — " + budget.qualifier(reading) if reading == budget.WIDENING else ""
    return f"{what}, {_label(study, c['metric'])}: {speed}{c['sentence'].rstrip('.')}{gap}."


def study_blocks(study: dict, cells: list[CellData], fig_dir: Path, cfg: CompareConfig) -> list[Block]:
    """Everything the report says about one study."""
    name = study["name"]
    out: list[Block] = [Heading(2, f"{study['title']} ({study['app']})", f"study-{name}")]
    out.append(Para(f"App config {study['config']}, {study['steps']} training steps per cell, baseline "
                    f"'{study['baseline']}'. Variants and the config overrides that define them:"))
    out.append(Table(["variant", "overrides", "cells complete"], [
        [v["name"], " ".join(f"{k}={render_value(x)}" for k, x in v["overrides"].items()) or "(app defaults)",
         f"{v['cells_complete']}/{v['cells_total']}"] for v in study["variants"]]))
    out += [Para(w, "warn") for w in study["warnings"]]
    if study.get("extractor_note"):
        out.append(Para(study["extractor_note"], "note"))

    out.append(Heading(3, "Results per variant"))
    rows = []
    for m in study["metrics"]:
        for v in study["variants"]:
            got = v["metrics"].get(m["key"])
            if not got:
                continue
            mean, ci = _interval(got)
            seeds = ", ".join(f"{s}: {fmt(x)}" for s, x in got["values"].items())
            rows.append([_label(study, m["key"]), v["name"], str(got["n"]), mean, ci, seeds])
    if rows:
        out.append(Table(["metric", "variant", "n", "mean", "95% CI", "every seed (seed: value)"], rows,
                         "mean ± 95% t-interval over seeds", numeric=[2, 3]))
    else:
        out.append(Para("No cell of this study is complete yet.", "warn"))

    bud = study.get("budget") or {}
    for chk in bud.get("checks", []):
        out.append(Para(chk["rule"], "warn" if chk["status"] != "converged" else "note"))
    cmp_rows, sentences = [], []
    for c in study["comparisons"]:
        arrow = "lower is better" if next(m for m in study["metrics"] if m["key"] == c["metric"])["lower_is_better"] else "higher is better"
        ci = f"[{fmt(c['low'])}, {fmt(c['high'])}]" if c["low"] is not None else "n/a"
        who = f"{c['variant']} − {c['baseline']}" + (" (A/A control)" if c.get("control") else "")
        cmp_rows.append([f"{_label(study, c['metric'])} ({arrow})", who, str(c["n"]), fmt(c["diff"]), ci,
                         fmt_p(c["p"]), fmt_p(c["p_holm"]), fmt(c["mde"]),
                         f"±{fmt(c['delta'])}" if c.get("delta") is not None else "none", c["verdict"]])
        sentences.append(verdict_line(study, c))
    if cmp_rows:
        out.append(Heading(3, "Paired comparison with the baseline"))
        out.append(Table(["metric", "difference", "n", "mean diff", "95% CI", "p", "Holm p", "MDE", "δ", "verdict"],
                         cmp_rows, f"paired by seed; Holm over the variants per metric; α = {cfg.alpha}, "
                         f"MDE at power {cfg.power}; δ = the smallest effect of interest", numeric=[2, 3, 5, 6, 7]))
        out.append(Bullets(sentences))

    story = study.get("dead_units")
    if story:
        out.append(Heading(3, "Dead units"))
        out.append(Para(f"The dead-unit story {story['verdict']}.", "verdict"))
        out.append(Bullets(story["lines"]))

    out += _figures(study, cells, fig_dir)
    out += example_blocks(study, cells, fig_dir, cfg.examples)
    out.append(Heading(3, "Cost"))
    cost_rows = []
    for v in study["variants"]:
        c = v["cost"]
        tp = f"{fmt(c['throughput'][0])} {c['throughput'][1]}" if c.get("throughput") and c["throughput"][0] else "n/a"
        cost_rows.append([v["name"], fmt(c["train_s"]), fmt(c.get("train_cpu_s")), fmt(c["eval_s"]),
                          fmt(c.get("eval_cpu_s")), fmt(c["steps_per_s"]), tp])
    out.append(Table(["variant", "train wall s", "train CPU s", "evaluate wall s", "evaluate CPU s", "steps/s",
                      "throughput (app-logged)"], cost_rows,
                     f"mean per cell (start-up included); {cfg.threads} thread(s) per cell and cells in parallel, so "
                     "wall times include contention — CPU seconds (user + system) are the steadier figure",
                     numeric=[1, 2, 3, 4, 5, 6]))
    return out


def _figures(study: dict, cells: list[CellData], fig_dir: Path) -> list[Block]:
    name = study["name"]
    labels = {m["key"]: _label(study, m["key"]) for m in study["metrics"]}
    out: list[Block] = [Heading(3, "Figures")]
    figs = [plots.metric_dots(study, fig_dir / f"{name}_metrics.png", labels),
            plots.training_curves(study, cells, fig_dir / f"{name}_curves.png")]
    for model in plots.models_in(cells):
        safe = "".join(ch if ch.isalnum() else "_" for ch in model)
        figs.append(plots.final_dead_bars(study, cells, model, fig_dir / f"{name}_{safe}_dead_final.png"))
        figs.append(plots.probe_curves(study, cells, model, "dead_frac", fig_dir / f"{name}_{safe}_dead.png"))
        figs.append(plots.probe_curves(study, cells, model, "grad_rms", fig_dir / f"{name}_{safe}_grad_rms.png"))
    got = [f for f in figs if f is not None]
    return out + got if got else []


def commit_blocks(code: dict) -> list[Block]:
    """The commits the cells ran at, and what is wrong with them (several, dirty, unknown)."""
    rows = [[v["commit"] or "not recorded", {True: "yes", False: "no"}.get(v["dirty"], "unknown"), str(v["cells"])]
            for v in code["versions"]]
    out: list[Block] = [Para(w, "warn") for w in code["warnings"]]
    if rows:
        out.insert(0, Table(["git commit the cells ran at", "uncommitted changes", "cells"], rows,
                            "recorded in each cell's cell.json when the runner started it", numeric=[2]))
    return out


def build_blocks(cfg: CompareConfig, summary: dict, data: list[CellData], fig_dir: Path,
                 preset_path: str, records: str = "") -> list[Block]:
    """The whole report as blocks; ``records`` (non-empty when the report lies beside committed
    cell records) says how many cells were read from them."""
    complete = sum(d.complete for d in data)
    failed = [r["key"] for r in summary["cells"] if r["status"] == "failed"]
    blocks: list[Block] = [Heading(1, f"leakylab comparison: {cfg.title}")]
    blocks.append(Para(
        f"Generated {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by python -m apps.compare "
        f"--config {preset_path}. {len(data)} cells ({len(cfg.studies)} stud{'y' if len(cfg.studies) == 1 else 'ies'}"
        f" × variants × {len(cfg.seeds)} seeds: {', '.join(map(str, cfg.seeds))}); {complete} complete."))
    if complete < len(data):
        blocks.append(Para(f"{len(data) - complete} cell(s) are not complete"
                           + (f" ({len(failed)} failed: {', '.join(failed)})" if failed else "")
                           + "; the statistics use the complete ones only. Re-run the same command to finish them.",
                           "warn"))
    blocks += [Para(w, "warn") for w in summary["code"]["warnings"]]
    if cfg.note:
        blocks.append(Para(cfg.note.strip(), "note"))
    blocks.append(Para(HOW_TO_READ))
    items = []
    for s in summary["studies"]:
        for c in s["comparisons"]:
            if not c["metric"].startswith(("dead_frac", "dormant_frac")):
                items.append(f"{s['title']}: {verdict_line(s, c)}")
        if s.get("dead_units"):
            items.append(f"{s['title']}: the dead-unit story {s['dead_units']['verdict']}.")
    if items:
        blocks.append(Heading(2, "Headline"))
        blocks.append(Bullets(items))
    for s in summary["studies"]:
        blocks += study_blocks(s, [d for d in data if d.cell.study == s["name"]], fig_dir, cfg)
    blocks.append(Heading(2, "Hyper-parameters"))
    blocks.append(Para(TUNED_FOR_RELU, "note"))
    env = summary["environment"]
    blocks.append(Heading(2, "Environment"))
    rows = [[k, str(v)] for k, v in env.items() if k != "packages"]
    rows += [[f"package {k}", str(v)] for k, v in env.get("packages", {}).items()]
    from_records = sum(r.get("source") == "record" for r in summary["cells"])
    blocks.append(Table(["what", "value"], rows, "the machine that wrote this report" + (
        f" ({from_records} cell(s) were read from their committed records: they ran earlier, perhaps elsewhere)"
        if from_records else "")))
    blocks.append(Heading(2, "Reproduce"))
    blocks += commit_blocks(summary["code"])
    if records:
        blocks.append(Para(f"The small records of every complete cell (cell.json, and the run's leakylab.json, "
                           "config.yaml, eval.json, metrics.jsonl, probes.jsonl and examples) are committed beside "
                           f"this report under {CELLS}/; python -m apps.compare --config {preset_path} --report-only "
                           f"rebuilds it from them. {records}"))
    blocks.append(Para("Every cell is an ordinary run directory made by the app's own commands; run these from "
                       "the project root to reproduce (or resume, or re-evaluate) any one of them by hand."))
    lines = []
    for r in summary["cells"]:
        wall = f", {fmt(r['wall_s'])} s" if r["wall_s"] is not None else ""
        lines.append(f"# {r['key']} ({r['status']}{wall})")
        lines += r["commands"]
    blocks.append(Code("\n".join(lines), collapsed=f"commands of all {len(summary['cells'])} cells"))
    return blocks


def _records_note(data: list[CellData], out: str) -> str:
    """Which of the complete cells this report read from the records beside it."""
    n, done = sum(d.source is not None for d in data), sum(d.complete for d in data)
    if n == 0:
        return f"This time every complete cell was read from its run directory under {out}."
    if n == done:
        return f"All {done} complete cells were read from these records."
    return (f"{n} of the {done} complete cells were read from these records, the rest from their run "
            f"directories under {out}.")


def write_report(cfg: CompareConfig, cells: list[Cell], environment: dict[str, Any], preset_path: str,
                 dest: str | Path | None = None, records: Path | None = None) -> dict:
    """Read the cells, write report.md, report.html and summary.json under ``dest`` (default
    ``cfg.report``). With ``records`` (a findings folder's cells/), a cell not complete in its run
    directory is read from its committed record there when that one is complete."""
    root = Path(cfg.report if dest is None else dest)
    fig_dir = root / "figures"
    if fig_dir.exists():
        shutil.rmtree(fig_dir)  # stale figures of removed variants must not linger
    fig_dir.mkdir(parents=True)
    data = [read_cell(c, s) for c, s in zip(cells, pick_sources(cells, records))]
    summary = analyse(cfg, data, environment)
    summary["preset"] = preset_path
    summary["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    beside = records is not None and records.parent.resolve() == root.resolve()
    note = _records_note(data, cfg.out) if beside else ""
    blocks = build_blocks(cfg, summary, data, fig_dir, preset_path, note)
    (root / "report.md").write_text(render_md(blocks, root), encoding="utf-8")
    (root / "report.html").write_text(render_html(blocks, f"leakylab comparison: {cfg.title}"), encoding="utf-8")
    (root / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n", encoding="utf-8")
    return summary
