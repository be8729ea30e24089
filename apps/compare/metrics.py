"""What the report measures per cell: metric names, their direction, and how to read them.

Eval metrics come straight from ``eval.json``; probe metrics summarise ``probes.jsonl`` at the
end of training: ``dead_frac.G`` is the mean over G's probed layers of the fraction of units whose
pre-activation was negative on every sampled input of the last probe window (``dormant_frac.X``
likewise for ReDo's τ-dormancy). Saturating output layers (a generator's final tanh) have no
dead-unit story and are left out of these means.
"""

from __future__ import annotations

from dataclasses import dataclass

from apps.compare.collect import CellData, final_probes, finite, probe_models
from common.probes.topology import SATURATING

PROBE_STATS = ("dead_frac", "dormant_frac")


@dataclass(frozen=True)
class MetricDef:
    key: str
    label: str
    lower_is_better: bool
    unit: str  # how a difference is spoken of ("FID", "BLEU", "" for fractions)


_EVAL = {
    "fid": MetricDef("fid", "FID", True, "FID"),
    "kid_mean": MetricDef("kid_mean", "KID", True, "KID"),
    "fid_floor": MetricDef("fid_floor", "real-vs-real FID floor", True, "FID"),
    "classes_covered": MetricDef("classes_covered", "classes covered", False, "classes"),
    "class_kl": MetricDef("class_kl", "class KL to real", True, "nats"),
    "confident_share": MetricDef("confident_share", "share classified with confidence ≥ 0.9", False, ""),
    "bleu": MetricDef("bleu", "BLEU", False, "BLEU"),
    "chrf": MetricDef("chrf", "chrF", False, "chrF"),
}

# Compared with the baseline unless the preset lists its own; "dead_frac.*" = every probed model.
DEFAULT_METRICS = {
    "gan": ["fid", "kid_mean", "dead_frac.G"],
    "translation": ["bleu", "chrf", "dead_frac.*"],
}
# Shown in the per-variant tables but not tested (context, not claims).
DESCRIPTIVE = {
    "gan": ["fid_floor", "classes_covered", "class_kl", "confident_share"],
    "translation": [],
}
# Computed with the eval's extractor network (features, or its class predictions): labelled with
# it, and never pooled across cells evaluated with different extractors.
EXTRACTOR_LABELLED = {"fid", "kid_mean", "fid_floor", "classes_covered", "class_kl", "confident_share"}


def metric_def(key: str) -> MetricDef:
    """Definition of a metric key (eval key or ``<probe stat>.<model>``)."""
    if key in _EVAL:
        return _EVAL[key]
    stat, _, model = key.partition(".")
    if stat in PROBE_STATS and model:
        what = "dead units" if stat == "dead_frac" else "dormant units (ReDo τ)"
        return MetricDef(key, f"{what} in {model} (fraction, mean over layers, end of training)", True, "")
    return MetricDef(key, key, True, "")  # an eval key we do not know: shown, lower taken as better


def expand_metrics(keys: list[str], cells: list[CellData]) -> list[str]:
    """Resolve ``<stat>.*`` against the probed models found in ``cells`` (first-seen order)."""
    models: dict[str, None] = {}
    for c in cells:
        for m in probe_models(c.probes):
            models.setdefault(m, None)
    out: list[str] = []
    for key in keys:
        stat, _, model = key.partition(".")
        if model == "*":
            out += [f"{stat}.{m}" for m in models if f"{stat}.{m}" not in out]
        elif key not in out:
            out.append(key)
    return out


def metric_value(data: CellData, key: str) -> float | None:
    """The cell's value of ``key``; None when it has none (not finished, not probed, NaN)."""
    if key in _EVAL or "." not in key:
        return finite((data.eval or {}).get(key))
    stat, _, model = key.partition(".")
    if stat not in PROBE_STATS:
        return None
    if stat == "dead_frac":
        vals = list(dead_by_layer(data, model).values())
    else:
        vals = [v for (m, _), r in final_probes(data.probes).items()
                if m == model and r.get("kind") not in SATURATING and (v := finite(r.get(stat))) is not None]
    return sum(vals) / len(vals) if vals else None


def steps_per_second(data: CellData) -> float | None:
    """Training speed from the runner's timing (whole train command, start-up included)."""
    t = data.timing or {}
    train_s = finite(t.get("train_s"))
    if not train_s or t.get("resumed"):
        return _speed_from_metrics(data)
    return data.cell.steps / train_s


def _speed_from_metrics(data: CellData) -> float | None:
    """Steps/s from metrics.jsonl timestamps, skipping gaps (a resumed run's pause)."""
    recs = [(r.get("step"), finite(r.get("time"))) for r in data.metrics]
    recs = [(s, t) for s, t in recs if isinstance(s, int) and t is not None]
    steps = secs = 0.0
    for (s0, t0), (s1, t1) in zip(recs, recs[1:]):
        dt, ds = t1 - t0, s1 - s0
        if ds > 0 and 0 < dt < 600:
            steps += ds
            secs += dt
    return steps / secs if secs > 0 else None


def throughput(data: CellData) -> tuple[float, str] | None:
    """Items/s logged by the app (images/s, tokens/s), averaged over its records."""
    for key, unit in (("images_per_s", "images/s"), ("img_per_s", "images/s"), ("tokens_per_s", "tokens/s"),
                      ("tok_per_s", "tokens/s")):
        vals = [finite(r.get(key)) for r in data.metrics]
        vals = [v for v in vals if v is not None]
        if vals:
            return sum(vals) / len(vals), unit
    return None


def dead_by_layer(data: CellData, model: str) -> dict[str, float]:
    """Final dead fraction of each rectifier layer of ``model`` (saturating outputs left out)."""
    out = {}
    for (m, layer), r in final_probes(data.probes).items():
        v = finite(r.get("dead_frac"))
        if m == model and v is not None and r.get("kind") not in SATURATING:
            out[layer] = v
    return out
