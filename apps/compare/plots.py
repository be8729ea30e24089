"""The report's figures (matplotlib, Agg backend, PNG files in the report folder).

Every curve is the mean over seeds at each logged step, with a band from the lowest to the
highest seed, so the seed spread is visible next to the difference between variants.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import matplotlib

matplotlib.use("Agg")  # headless: figures only go to files
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from apps.compare.collect import CellData, final_probes, finite, probe_models  # noqa: E402
from apps.compare.doc import Image  # noqa: E402
from common.appspec import PROBE_STATS  # noqa: E402
from common.probes.topology import SATURATING  # noqa: E402

# metrics.jsonl keys that are bookkeeping rather than curves worth plotting
_SKIP = {"step", "time", "epoch", "lr", "lr_g", "lr_d", "seed", "world_size", "elapsed"}
_MAX_PANELS = 9
DPI = 90


def _colors(names: list[str]) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10")
    return {n: cmap(i % 10) for i, n in enumerate(names)}


def _series(cells: Iterable[CellData], key: str, source: str = "metrics") -> dict[int, list[float]]:
    """step → values over seeds (one per seed and step)."""
    out: dict[int, list[float]] = {}
    for c in cells:
        recs = c.metrics if source == "metrics" else c.probes
        per_step: dict[int, float] = {}
        for r in recs:
            v, s = finite(r.get(key)), r.get("step")
            if v is not None and isinstance(s, int):
                per_step[s] = v  # last record of a step wins (a resumed run re-logs it)
        for s, v in per_step.items():
            out.setdefault(s, []).append(v)
    return out


def _smooth(ys: list[float], window: int) -> list[float]:
    if window <= 1:
        return ys
    out, acc = [], 0.0
    for i, y in enumerate(ys):
        acc += y
        if i >= window:
            acc -= ys[i - window]
        out.append(acc / min(i + 1, window))
    return out


def _band(ax: Any, series: dict[int, list[float]], color: Any, label: str, smooth: bool, log: bool = False) -> None:
    steps = sorted(series)
    if log:  # a log axis cannot show 0 (a layer that got no gradient at all): leave those points out
        steps = [s for s in steps if min(series[s]) > 0]
    if not steps:
        return
    mean = [sum(series[s]) / len(series[s]) for s in steps]
    lo = [min(series[s]) for s in steps]
    hi = [max(series[s]) for s in steps]
    w = max(1, len(steps) // 25) if smooth else 1
    ax.plot(steps, _smooth(mean, w), color=color, label=label, lw=1.6,
            marker="o" if len(steps) <= 3 else None, ms=4)  # a lone point needs a marker to be seen
    if len(steps) > 1:
        ax.fill_between(steps, _smooth(lo, w), _smooth(hi, w), color=color, alpha=0.15, lw=0)
    if log:
        ax.set_yscale("log")


def _grid(n: int, width: float = 4.2, height: float = 3.0) -> tuple[Any, list[Any]]:
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = [a for row in axes for a in row]
    for a in flat[n:]:
        a.axis("off")
    return fig, flat[:n]


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def curve_keys(cells: list[CellData], quality: Sequence[str] = ()) -> list[str]:
    """Numeric metrics.jsonl keys to plot: losses first, then the app's quality scores (keys that
    contain one of ``quality``, e.g. ``valid_<score>``), then the rest."""
    seen: dict[str, None] = {}
    for c in cells:
        for r in c.metrics:
            for k, v in r.items():
                if k not in _SKIP and finite(v) is not None and not k.endswith(("_per_s", "_s")):
                    seen.setdefault(k, None)
    keys = list(seen)

    def rank(k: str) -> int:
        kl = k.lower()
        if "loss" in kl:
            return 0
        if any(q.lower() in kl for q in quality):
            return 1
        return 2

    return sorted(keys, key=rank)[:_MAX_PANELS]


def training_curves(study: dict, cells: list[CellData], path: Path) -> Image | None:
    """Losses and periodic quality metrics over training, one panel per key."""
    quality = [m["key"] for m in study["metrics"] if m["key"].partition(".")[0] not in PROBE_STATS]
    keys = curve_keys(cells, quality)
    if not keys:
        return None
    names = [v["name"] for v in study["variants"]]
    colors = _colors(names)
    fig, axes = _grid(len(keys))
    for ax, key in zip(axes, keys):
        for name in names:
            mine = [c for c in cells if c.cell.variant == name]
            _band(ax, _series(mine, key), colors[name], name, smooth="loss" in key.lower())
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    _save(fig, path)
    return Image(path, f"{study['title']}: training curves (mean over seeds; band = lowest to highest seed; "
                       "losses smoothed)")


def probe_curves(study: dict, cells: list[CellData], model: str, stat: str, path: Path) -> Image | None:
    """``stat`` (dead_frac, grad_rms …) per layer of ``model`` over training, one panel per variant."""
    names = [v["name"] for v in study["variants"]]
    layers: dict[str, None] = {}
    for c in cells:
        for r in c.probes:
            # a saturating output (tanh) has no dead units to speak of
            if r.get("model") == model and finite(r.get(stat)) is not None and not (
                    stat.endswith("frac") and r.get("kind") in SATURATING):
                layers.setdefault(str(r.get("layer")), None)
    if not layers:
        return None
    colors = _colors(list(layers))
    fig, axes = _grid(len(names), 4.2, 2.9)
    log = stat.endswith("rms")
    for ax, name in zip(axes, names):
        for layer in layers:
            series: dict[int, list[float]] = {}
            for c in cells:
                if c.cell.variant != name:
                    continue
                for s, v in _series([_only(c, model, layer)], stat, "probes").items():
                    series.setdefault(s, []).extend(v)
            _band(ax, series, colors[layer], layer, smooth=False, log=log)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel(stat)
        if stat.endswith("frac"):
            ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    # every layer in the legend, even one that left no point on the first panel
    handles = [Line2D([0], [0], color=colors[layer], label=layer) for layer in layers]
    axes[0].legend(handles=handles, fontsize=7, title="layer", title_fontsize=7)
    _save(fig, path)
    what = {"dead_frac": "dead-unit fraction", "grad_rms": "gradient RMS", "dormant_frac": "dormant fraction"}.get(stat, stat)
    note = "; log scale — a window in which a layer got no gradient at all has no point" if log else ""
    if stat == "dead_frac":
        note = ("; dead = pre-activation negative on every probed input — a LeakyReLU unit counted so still "
                "passes gradient ×α and can come back, a ReLU unit cannot")
    return Image(path, f"{study['title']}: {what} per layer of {model} over training (mean over seeds{note})")


def _only(c: CellData, model: str, layer: str) -> CellData:
    sub = CellData(c.cell)
    sub.probes = [r for r in c.probes if r.get("model") == model and str(r.get("layer")) == layer]
    return sub


def final_dead_bars(study: dict, cells: list[CellData], model: str, path: Path) -> Image | None:
    """Dead-unit fraction of each layer at the end of training, the variants side by side."""
    names = [v["name"] for v in study["variants"]]
    per: dict[str, dict[str, list[float]]] = {}
    layers: dict[str, None] = {}
    for c in cells:
        if not c.complete:
            continue
        for (m, layer), r in final_probes(c.probes).items():
            v = finite(r.get("dead_frac"))
            if m == model and v is not None and r.get("kind") not in SATURATING:
                layers.setdefault(layer, None)
                per.setdefault(c.cell.variant, {}).setdefault(layer, []).append(v)
    if not layers:
        return None
    colors = _colors(names)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.0 + 0.5 * len(layers) * len(names)), 3.4))
    width = 0.8 / len(names)
    for j, name in enumerate(names):
        xs, ys, lo, hi = [], [], [], []
        for i, layer in enumerate(layers):
            vals = per.get(name, {}).get(layer)
            if vals:
                m = sum(vals) / len(vals)
                xs.append(i + (j - (len(names) - 1) / 2) * width)
                ys.append(m)
                lo.append(m - min(vals))
                hi.append(max(vals) - m)
        ax.bar(xs, ys, width, color=colors[name], label=name, yerr=[lo, hi], capsize=2)
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels(list(layers), rotation=20, fontsize=8)
    ax.set_ylabel("dead fraction")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)
    return Image(path, f"{study['title']}: dead-unit fraction per layer of {model} at the end of training "
                       "(mean over seeds; whiskers = lowest and highest seed)")


def metric_dots(study: dict, path: Path, label_of: dict[str, str]) -> Image | None:
    """Every seed's value per variant, with the mean and its 95% t-interval, one panel per metric."""
    keys = [m["key"] for m in study["metrics"] if m["tested"]]
    if not keys:
        return None
    names = [v["name"] for v in study["variants"]]
    colors = _colors(names)
    fig, axes = _grid(len(keys), 4.0, 3.0)
    for ax, key in zip(axes, keys):
        seeds: dict[str, list[tuple[int, float]]] = {}
        for i, v in enumerate(study["variants"]):
            for s, x in v["metrics"].get(key, {}).get("values", {}).items():
                seeds.setdefault(s, []).append((i, x))
        for pts in seeds.values():  # one grey line per seed: the pairing the tests use
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color="0.75", lw=0.8, zorder=1)
        for i, v in enumerate(study["variants"]):
            m = v["metrics"].get(key)
            if not m:
                continue
            vals = list(m["values"].values())
            ax.scatter([i] * len(vals), vals, color=colors[v["name"]], alpha=0.8, s=18, zorder=2)
            if m["low"] is not None:
                ax.errorbar([i + 0.18], [m["mean"]], yerr=[[m["mean"] - m["low"]], [m["high"] - m["mean"]]],
                            fmt="o", color="black", ms=4, capsize=3)
            else:
                ax.plot([i + 0.18], [m["mean"]], "o", color="black", ms=4)
        ax.set_xticks(range(len(names)))
        ax.set_xlim(-0.5, len(names) - 0.3)
        ax.set_xticklabels(names, rotation=25, fontsize=8, ha="right")
        ax.set_title(label_of.get(key, key), fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    _save(fig, path)
    return Image(path, f"{study['title']}: every seed's value (dots; grey lines join the same seed) and the mean "
                       "with its 95% t-interval (black)")


def models_in(cells: list[CellData]) -> list[str]:
    """Probed models of these cells in first-seen order."""
    seen: dict[str, None] = {}
    for c in cells:
        for m in probe_models(c.probes):
            seen.setdefault(m, None)
    return list(seen)
