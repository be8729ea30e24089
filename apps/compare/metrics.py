"""What the report measures per cell: metric names, their direction, and how to read them.

Eval metrics come straight from ``eval.json``, named and directed by the app's description
(:class:`common.appspec.AppSpec`). Probe metrics summarise ``probes.jsonl`` at the end of
training: ``dead_frac.<part>`` is the mean over the part's probed layers of the fraction of units
whose pre-activation was negative on every sampled input of the last probe window
(``dormant_frac.<part>`` likewise for ReDo's τ-dormancy). Saturating output layers (a final tanh)
have no dead-unit story and are left out of these means.
"""

from __future__ import annotations

from typing import Sequence

from apps.compare.collect import CellData, final_probes, finite, probe_models
from common.appspec import PROBE_STATS, AppSpec, MetricDef
from common.probes.topology import SATURATING


def metric_def(key: str, app: AppSpec | None = None) -> MetricDef:
    """Definition of a metric key: one of the app's eval metrics, or ``<probe stat>.<part>``."""
    known = app.metric(key) if app is not None else None
    if known is not None:
        return known
    stat, _, model = key.partition(".")
    if stat in PROBE_STATS and model:
        what = "dead units" if stat == "dead_frac" else "dormant units (ReDo τ)"
        # δ = 5 percentage points of units: the share below which a baseline is said not to
        # have reproduced dying units at all (analysis.DEAD_THRESHOLD).
        return MetricDef(key, f"{what} in {model} (fraction, mean over layers, end of training)", True, "",
                         delta=0.05)
    return MetricDef(key, key, True, "")  # an eval key the app does not describe: shown, lower taken as better


def expand_metrics(keys: list[str], cells: list[CellData], parts: Sequence[str] = ()) -> list[str]:
    """Resolve ``<stat>.*`` against the probed models found in ``cells``: the app's declared
    ``parts`` first (in their order), then any other found, in first-seen order."""
    found: dict[str, None] = {}
    for c in cells:
        for m in probe_models(c.probes):
            found.setdefault(m, None)
    models = [p for p in parts if p in found] + [m for m in found if m not in parts]
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
    stat, _, model = key.partition(".")
    if stat not in PROBE_STATS or not model:
        return finite((data.eval or {}).get(key))
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


def throughput(data: CellData, keys: Sequence[tuple[str, str]]) -> tuple[float, str] | None:
    """Items/s logged by the app under one of ``keys`` (its description's), averaged over its records."""
    for key, unit in keys:
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
