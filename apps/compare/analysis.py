"""From cell data to the numbers the report states: per-variant intervals, paired comparisons,
Holm-corrected verdicts, costs, and whether the dead-unit story shows up.

The result is a plain JSON-ready dict (it *is* ``summary.json``, ``format`` 1), so the Markdown
and HTML writers only lay it out and never compute a claim of their own.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from apps.compare import budget, stats, verdicts
from apps.compare.collect import CellData, finite
from apps.compare.config import CompareConfig, delta_value
from apps.compare.matrix import study_variants
from apps.compare.metrics import dead_by_layer, expand_metrics, metric_def, metric_value, steps_per_second, throughput
from common.appspec import AppSpec, MetricDef, get_app

FORMAT = 1
# A baseline whose units are less than this fraction dead has not reproduced dying ReLUs.
DEAD_THRESHOLD = 0.05


def _interval_dict(values: dict[int, float]) -> dict[str, Any]:
    iv = stats.t_interval(list(values.values()))
    return {"mean": iv.mean, "low": iv.low, "high": iv.high, "sd": iv.sd, "n": iv.n,
            "values": {str(s): v for s, v in sorted(values.items())}}


def _extractor_key(data: CellData) -> tuple[str, str] | None:
    ex = (data.eval or {}).get("extractor")
    if not isinstance(ex, dict):
        return None
    return str(ex.get("name", "?")), str(ex.get("hash", ""))


def _extractor(cells: list[CellData], app: AppSpec, warnings: list[str]) -> tuple[dict | None, set[str]]:
    """The study's one extractor, and cells (keys) whose extractor metrics used another and are dropped."""
    keys = Counter(k for c in cells if c.eval and (k := _extractor_key(c)) is not None)
    if not keys:
        return None, set()
    (name, hsh), _ = keys.most_common(1)[0]
    info = next(dict(c.eval["extractor"]) for c in cells if _extractor_key(c) == (name, hsh))
    dropped = {c.cell.key for c in cells if c.eval and _extractor_key(c) not in (None, (name, hsh))}
    if dropped:
        labels = ", ".join(m.label for m in (*app.headline, *app.descriptive) if m.key in app.extractor_metrics)
        warnings.append(
            f"{len(dropped)} cell(s) were evaluated with another feature extractor; their extractor-based metrics "
            f"({labels}) are left out, since scores from different extractors are not comparable: "
            f"{', '.join(sorted(dropped))}. Re-run the comparison with --reevaluate to score every cell with the "
            "current extractor")
    return info, dropped


def analyse_study(name: str, cfg: CompareConfig, cells: list[CellData]) -> dict[str, Any]:
    """Summary of one study (see module docstring)."""
    study = cfg.studies[name]
    app = get_app(study.app)
    warnings: list[str] = []
    extractor, dropped = _extractor(cells, app, warnings) if app.extractor_metrics else (None, set())
    tested = expand_metrics(study.metrics or app.default_metrics, cells, app.probed_parts)
    shown = tested + [k for k in app.descriptive_metrics if k not in tested]

    def value(c: CellData, key: str) -> float | None:
        if not c.complete or (key in app.extractor_metrics and c.cell.key in dropped):
            return None
        return metric_value(c, key)

    arms = study_variants(study)
    variants = []
    per_arm: dict[str, dict[str, dict[int, float]]] = {}
    for arm in arms:
        mine = [c for c in cells if c.cell.variant == arm.name]
        vals = {k: {c.cell.seed: v for c in mine if (v := value(c, k)) is not None} for k in shown}
        per_arm[arm.name] = vals
        variants.append({
            "name": arm.name, "baseline": arm.baseline, "group": arm.group,
            "overrides": {k: v for k, v in arm.overrides},
            "cells_complete": sum(c.complete for c in mine), "cells_total": len(mine),
            "metrics": {k: _interval_dict(v) for k, v in vals.items() if v},
            "cost": _cost(mine, app),
            "dead_by_layer": _dead_layers([c for c in mine if c.complete]),
        })
    shown = [k for k in shown if any(k in v["metrics"] for v in variants)]
    tested = [k for k in tested if k in shown]
    for check in app.checks:
        warnings += check(per_arm)

    comparisons = []
    for key in tested:
        md = metric_def(key, app)
        rows = []
        for arm in arms:
            if arm.is_baseline:
                continue
            pr = stats.paired(per_arm[arm.name][key], per_arm[arm.baseline][key],
                              alpha=cfg.alpha, power=cfg.power)
            rows.append((arm, pr))
        adjusted = stats.holm([pr.p if pr else None for _, pr in rows])
        for (arm, pr), p_holm in zip(rows, adjusted):
            delta = smallest_effect(md, study.deltas.get(key), per_arm[arm.baseline][key])
            v = verdicts.decide(pr, p_holm, md.lower_is_better, md.unit, delta, cfg.alpha)
            comparisons.append({
                "variant": arm.name, "baseline": arm.baseline, "metric": key,
                "n": pr.n if pr else 0, "diff": pr.diff if pr else None, "sd": pr.sd if pr else None,
                "low": pr.low if pr else None, "high": pr.high if pr else None,
                "p": pr.p if pr else None, "p_holm": p_holm, "mde": pr.mde if pr else None,
                "seeds": list(pr.seeds) if pr else [], "verdict": v.label, "sentence": v.sentence,
                "delta": v.delta, "eq_low": v.eq_low, "eq_high": v.eq_high,
                "control": arm.name.split("@")[0] in study.controls,
            })
    warnings += failed_controls(comparisons)
    checks = budget_checks(app, study, tested, comparisons, cells)
    for c in comparisons:
        c["learning_speed"] = budget.comparison_is_learning_speed(
            next((k for k in checks if k.metric == c["metric"]), checks[0] if checks else None),
            c["variant"], c["baseline"], c["verdict"])
    learning_speed = any(c["learning_speed"] for c in comparisons) or any(k.learning_speed for k in checks)

    summary = {
        "name": name, "app": study.app, "title": study.title or name, "config": study.config,
        "steps": study.steps, "baseline": study.baseline, "extractor": extractor,
        "extractor_note": _extractor_note(extractor, cells, app), "warnings": warnings,
        "metrics": [_metric_entry(metric_def(k, app), k in tested, k in app.extractor_metrics) for k in shown],
        "variants": variants, "comparisons": comparisons,
        "budget": {"learning_speed": learning_speed,
                   "checks": [{"metric": c.metric, "curve": c.curve, "status": c.status, "threshold": c.threshold,
                               "gains": c.gains, "seeds": c.seeds,
                               "rule": budget.rule_text(c, metric_def(c.metric, app).unit)} for c in checks]},
    }
    summary["dead_units"] = dead_unit_story(summary)
    return summary


def smallest_effect(md: MetricDef, override: Any, baseline: dict[int, float]) -> float | None:
    """δ of one comparison in the metric's units: the preset's override, else the metric's own;
    a relative δ is taken of the baseline's mean (None when that mean is 0 or unknown)."""
    spec = delta_value(override) if override is not None else (
        (md.delta, md.relative) if md.delta is not None else None)
    if spec is None:
        return None
    value, relative = spec
    if not relative:
        return value
    mean = abs(sum(baseline.values()) / len(baseline)) if baseline else 0.0
    return value * mean if mean > 0 else None


def failed_controls(comparisons: list[dict[str, Any]]) -> list[str]:
    """A warning per A/A control that came out better or worse: the same function under two
    names differed, so the study's other verdicts deserve less trust than their p-values claim."""
    return [f"A/A control failed: {c['variant']} computes the same function as {c['baseline']}, yet its "
            f"{c['metric']} came out '{c['verdict']}' ({c['sentence']}). Treat this study's verdicts with "
            "suspicion: something other than the activation differs between runs, or the noise is "
            "larger than the seeds show." for c in comparisons
            if c["control"] and c["verdict"] in (verdicts.BETTER, verdicts.WORSE)]


def budget_checks(app: AppSpec, study: Any, tested: list[str], comparisons: list[dict[str, Any]],
                  cells: list[CellData]) -> list[budget.BudgetCheck]:
    """The budget check of every tested metric that has an evaluation curve, over the complete
    cells of every variant; δ is the one its comparisons used (the largest, if they differ)."""
    out = []
    for key in tested:
        md = metric_def(key, app)
        if md.curve is None:
            continue
        deltas = [c["delta"] for c in comparisons if c["metric"] == key and c["delta"] is not None]
        curves: dict[str, list] = {}
        for c in cells:
            if c.complete:
                curves.setdefault(c.cell.variant, []).append(budget.read_curve(c.metrics, md.curve))
        out.append(budget.check_budget(key, md.curve, md.lower_is_better, max(deltas) if deltas else None, curves))
    return out


def _metric_entry(md: MetricDef, tested: bool, by_extractor: bool) -> dict[str, Any]:
    """A metric as summary.json lists it (``by_extractor``: its values depend on the extractor)."""
    return {"key": md.key, "label": md.label, "lower_is_better": md.lower_is_better, "unit": md.unit,
            "tested": tested, "by_extractor": by_extractor, "delta": md.delta, "delta_relative": md.relative,
            "curve": md.curve}


def _extractor_note(extractor: dict | None, cells: list[CellData], app: AppSpec) -> str | None:
    """The app's note on what the extractor's scores can be compared with (None: no extractor)."""
    if not extractor or app.describe_extractor is None:
        return None
    first = next((c.eval for c in cells if c.eval), {})
    return app.describe_extractor(extractor, first)


def _dead_layers(cells: list[CellData]) -> dict[str, dict[str, float]]:
    """model → layer → final dead fraction, mean over these cells (seeds)."""
    acc: dict[str, dict[str, list[float]]] = {}
    for c in cells:
        for model in sorted({str(r.get("model")) for r in c.probes}):
            for layer, v in dead_by_layer(c, model).items():
                acc.setdefault(model, {}).setdefault(layer, []).append(v)
    return {m: {layer: sum(v) / len(v) for layer, v in layers.items()} for m, layers in acc.items()}


def _cost(cells: list[CellData], app: AppSpec) -> dict[str, Any]:
    def mean(xs: list[float | None]) -> float | None:
        xs = [x for x in xs if x is not None]
        return sum(xs) / len(xs) if xs else None

    timed = [c for c in cells if c.timing and c.timing.get("returncode") == 0]
    tp = [t for c in cells if (t := throughput(c, app.throughput)) is not None]
    return {
        "train_s": mean([finite(c.timing.get("train_s")) for c in timed if not c.timing.get("resumed")]),
        "eval_s": mean([finite(c.timing.get("eval_s")) for c in timed]),
        "train_cpu_s": mean([finite(c.timing.get("train_cpu_s")) for c in timed if not c.timing.get("resumed")]),
        "eval_cpu_s": mean([finite(c.timing.get("eval_cpu_s")) for c in timed]),
        "steps_per_s": mean([steps_per_second(c) for c in cells if c.complete]),
        "throughput": [mean([t[0] for t in tp]), tp[0][1]] if tp else None,
    }


def dead_unit_story(study: dict[str, Any]) -> dict[str, Any] | None:
    """Does the baseline lose units, and do the variants measurably keep them? (None: no probes).

    With a learning-rate sweep every rate has its own baseline arm (``relu@lr0.0001``), and each
    rate is told apart: a variant only counts against the baseline it was paired with."""
    models = [m["key"] for m in study["metrics"] if m["key"].startswith("dead_frac.") and m["tested"]]
    if not models:
        return None
    bases = [v for v in study["variants"] if v.get("baseline", study["baseline"]) == v["name"]]
    lines, shows, untested = [], False, False
    for key in models:
        for base in bases:
            if key in base["metrics"]:
                line, status = _story_line(study, base, key)
                lines.append(line)
                shows, untested = shows or status == "shows", untested or status == "untested"
    if shows:
        verdict = "shows up: the baseline loses units and at least one variant measurably keeps them"
    elif untested:
        verdict = "cannot be tested with one seed: the baseline loses units, but no difference can be tested"
    else:
        verdict = "does not show up at this budget"
    return {"shows_up": shows, "verdict": verdict, "lines": lines, "threshold": DEAD_THRESHOLD}


def _story_line(study: dict[str, Any], base: dict[str, Any], key: str) -> tuple[str, str]:
    """One baseline arm's dead-unit line for metric ``key`` (``dead_frac.<model>``), and whether
    it shows the story ("shows"), could not test it ("untested") or neither ("")."""
    model = key.split(".", 1)[1]
    where = f"{model} at {base['group']}" if base.get("group") else model
    b = base["metrics"][key]["mean"]
    if b < DEAD_THRESHOLD:
        return (f"{where}: the baseline ends with only {b:.1%} dead units (below {DEAD_THRESHOLD:.0%}), "
                "so dying units did not show up here."), ""
    cmp = [c for c in study["comparisons"] if c["metric"] == key and not c.get("control")
           and c.get("baseline", study["baseline"]) == base["name"]]
    better = [c["variant"] for c in cmp if c["verdict"] == "better"]
    worse = [c["variant"] for c in cmp if c["verdict"] == "worse"]
    layers = base.get("dead_by_layer", {}).get(model, {})
    per = ", ".join(f"{layer} {v:.0%}" for layer, v in layers.items())
    text = (f"{where}: the baseline '{base['name']}' ends with {b:.1%} of its units dead on average over "
            f"its layers ({per})")
    status = ""
    if better:
        status = "shows"
        each = ", ".join(f"{v} ({_mean_of(study, v, key):.1%})" for v in better)
        text += f"; measurably fewer with {each}"
    elif cmp and all(c["verdict"] == "untestable" for c in cmp):
        status = "untested"
        each = ", ".join(f"{c['variant']} ({_mean_of(study, c['variant'], key):.1%})" for c in cmp)
        text += f"; the variants end with {each}, but one paired seed allows no test: run more seeds"
    else:
        text += "; no variant reduces that measurably at this budget"
    if worse:
        text += f"; measurably more with {', '.join(worse)}"
    return text + ".", status


def _mean_of(study: dict[str, Any], variant: str, key: str) -> float:
    v = next(x for x in study["variants"] if x["name"] == variant)
    return v["metrics"][key]["mean"]


def cells_table(cells: list[CellData], threads: int) -> list[dict[str, Any]]:
    """Every cell with its status, where it was read from, its code version and the commands
    that reproduce it."""
    rows = []
    for c in cells:
        t = c.timing or {}
        status = "complete" if c.complete else ("failed" if t.get("returncode") not in (None, 0) else "not run")
        rows.append({
            "key": c.cell.key, "study": c.cell.study, "variant": c.cell.variant, "seed": c.cell.seed,
            "run_dir": str(c.cell.run_dir), "status": status, "wall_s": finite(t.get("wall_s")),
            "source": "record" if c.source is not None else "run", "commit": t.get("commit"),
            "dirty": t.get("dirty"), "commands": c.cell.commands(threads),
        })
    return rows


def code_versions(cells: list[CellData]) -> dict[str, Any]:
    """The commits the complete cells ran at (training and, if later, evaluation), with the cells
    at each, and warnings when they differ, had uncommitted changes, or were not recorded."""
    versions: dict[tuple[str | None, bool | None], set[str]] = {}
    for c in cells:
        if not c.complete:
            continue
        t = c.timing or {}
        pairs = {(t.get("commit"), t.get("dirty"))}
        if "train_commit" in t:
            pairs.add((t.get("train_commit"), t.get("train_dirty")))
        for pair in pairs:
            versions.setdefault(pair, set()).add(c.cell.key)
    rows = sorted(({"commit": k[0], "dirty": k[1], "cells": len(v)} for k, v in versions.items()),
                  key=lambda r: (-r["cells"], r["commit"] or "", bool(r["dirty"])))
    known = sorted({r["commit"] for r in rows if r["commit"]})
    warnings = []
    if len(known) > 1:
        each = ", ".join(f"{r['commit'][:10]}{' (dirty)' if r['dirty'] else ''}: {r['cells']} cell(s)"
                         for r in rows if r["commit"])
        warnings.append(f"The cells ran at {len(known)} different commits ({each}): a code change between "
                        "them may be part of any difference. Re-run them at one commit, or check that the "
                        "changes between these commits touch nothing the cells measure.")
    dirty = len(set().union(*(v for k, v in versions.items() if k[0] and k[1])))
    if dirty:
        warnings.append(f"{dirty} cell(s) ran with uncommitted changes to tracked files: their commit alone "
                        "does not reproduce them.")
    unknown = len(set().union(*(v for k, v in versions.items() if not k[0])))
    if unknown:
        warnings.append(f"{unknown} cell(s) recorded no commit (git unavailable, or run before cells "
                        "recorded one).")
    return {"versions": rows, "warnings": warnings}


def analyse(cfg: CompareConfig, cells: list[CellData], environment: dict[str, Any]) -> dict[str, Any]:
    """The whole ``summary.json``."""
    studies = [analyse_study(name, cfg, [c for c in cells if c.cell.study == name]) for name in cfg.studies]
    return {
        "format": FORMAT, "title": cfg.title, "note": cfg.note, "seeds": list(cfg.seeds),
        "alpha": cfg.alpha, "power": cfg.power, "environment": environment,
        "studies": studies, "cells": cells_table(cells, cfg.threads), "code": code_versions(cells),
    }
