"""Writes the theory report: ``report.md`` (summary table + one section per claim) and PNG plots.

The report is a pure function of the results (no timestamps, no timings), so the same seed gives
the same file. Plots use matplotlib's Agg backend: no display needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from apps.theory.results import Check, ClaimResult, Z_TOL, fmt  # noqa: E402


def verdict(r: ClaimResult) -> str:
    return "PASS" if r.passed else "FAIL"


def control_summary(r: ClaimResult) -> str:
    """E.g. '3/3 fail the prediction ✓' — every control must miss."""
    missed = sum(not c.holds for c in r.controls)
    mark = "✓" if r.controls_fail and r.controls else "✗"
    return f"{missed}/{len(r.controls)} fail the prediction {mark}"


def summary_rows(results: Sequence[ClaimResult]) -> list[list[str]]:
    """One row per claim: its headline (first) check, verdict, controls."""
    rows = []
    for r in results:
        head = r.checks[0]
        held = sum(c.holds for c in r.checks)
        rows.append([str(r.number), r.title, f"{head.name}: {head.describe_relation()}",
                     fmt(head.measured), head.basis or "exact",
                     f"{verdict(r)} ({held}/{len(r.checks)} checks)", control_summary(r)])
    return rows


SUMMARY_HEADER = ["#", "claim", "predicted", "measured", "tolerance", "pass/fail", "controls"]


def table(header: list[str], rows: list[list[str]]) -> str:
    def cell(s: str) -> str:
        return s.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def check_rows(checks: Sequence[Check], control: bool) -> list[list[str]]:
    rows = []
    for c in checks:
        ok = (not c.holds) if control else c.holds
        outcome = ("misses ✓" if ok else "HOLDS ✗") if control else ("holds ✓" if ok else "FAILS ✗")
        rows.append([c.name, c.describe_relation(), fmt(c.measured), c.basis or "exact", outcome])
    return rows


def render_markdown(results: Sequence[ClaimResult], seed: int, quick: bool, torch_version: str) -> str:
    passed = sum(r.passed for r in results)
    out = [
        "# Theory check: the seed texts' claims, predicted vs measured",
        "",
        f"Seed {seed}, {'quick' if quick else 'full'} mode, torch {torch_version}. "
        f"**{passed}/{len(results)} claims pass.** Reproduce: `python -m apps.theory --seed {seed}"
        f"{' --quick' if quick else ''}`.",
        "",
        "Every claim of docs/science.md is measured on real modules (autograd through nn.ReLU, "
        "nn.LeakyReLU, nn.Sigmoid, nn.Linear; real SGD on the digits data; the product's "
        "common.init and common.remedies) or by Monte Carlo. Monte Carlo tolerances are "
        f"{Z_TOL:g} standard errors computed from the samples; exact statements get a rounding "
        "tolerance (or none) and say so. A claim passes when all its checks hold **and** every "
        "negative control — the same prediction applied where it must not hold — misses.",
        "",
        table(SUMMARY_HEADER, summary_rows(results)),
        "",
    ]
    for r in results:
        out += [f"## {r.number}. {r.title} — {verdict(r)}", "", f"> {r.claim}", "",
                table(["check", "predicted", "measured", "tolerance", "result"],
                      check_rows(r.checks, False)), "",
                "Negative controls (each must miss the prediction):", "",
                table(["control", "predicted", "measured", "tolerance", "result"],
                      check_rows(r.controls, True)), ""]
        out += [f"- {n}" for n in r.notes]
        out += [""] + [f"![claim {r.number}]({p})" for p in r.plots] + [""]
    return "\n".join(out).rstrip() + "\n"


# --- plots -----------------------------------------------------------------------------------


def _save(fig: plt.Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(fig)


def plot_moments(s: dict, path: Path) -> None:
    a = s["alpha"]
    grid = [i / 100 for i in range(101)]
    fig, ax = plt.subplots(1, 2, figsize=(8, 3.2))
    ax[0].plot(grid, [(1 + x) / 2 for x in grid], "k--", label="(1+α)/2")
    ax[0].errorbar(a, s["mean"], yerr=[Z_TOL * e for e in s["mean_se"]], fmt="o", label="measured")
    ax[0].set(xlabel="α", ylabel="E[G]", title="mean of the local gradient")
    ax[1].plot(grid, [(1 - x) ** 2 / 4 for x in grid], "k--", label="(1−α)²/4")
    ax[1].errorbar(a, s["var"], yerr=[Z_TOL * e for e in s["var_se"]], fmt="o", label="measured")
    ax[1].set(xlabel="α", ylabel="Var(G)", title="variance of the local gradient")
    for x in ax:
        x.legend()
    _save(fig, path)


def plot_depth(s: dict, path: Path) -> None:
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for i, direction in enumerate(("forward", "backward")):
        for k, (label, c) in enumerate(s.items()):
            v = c[direction]
            n = len(v)
            # forward: layer 1 → L; backward: from the top down, so plot against layers travelled
            ys = [x / v[0] for x in v] if direction == "forward" else [x / v[-1] for x in v[::-1]]
            line, = ax[i].semilogy(range(n), ys, label=label)
            ax[i].semilogy(range(n), [c["rate"] ** l for l in range(n)], "--", color=line.get_color(),
                           alpha=0.6)
        ax[i].set(xlabel="layers travelled", title=f"{direction} variance / first (dashed: predicted)")
    ax[0].set_ylabel("variance ratio (geometric mean over draws)")
    ax[1].legend(fontsize=7)
    _save(fig, path)


def plot_grad_depth(s: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    n = len(s["sigmoid"])
    ax.semilogy(range(n), s["sigmoid"], "o-", label="sigmoid")
    ax.semilogy(range(n), s["leaky"], "s-", label="LeakyReLU(0.2), same weights")
    ax.semilogy(range(n), s["bound"], "k--", label="0.25^(L−l) Π‖W‖₂ bound")
    ax.set(xlabel="layer l (0 = input)", ylabel="‖dL/da_l‖ / ‖dL/da_L‖",
           title="gradient norm through depth")
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_recovery(s: dict, path: Path) -> None:
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
    steps = range(1, len(s["relu_alive"]) + 1)
    ax[0].plot(steps, s["relu_alive"], label="ReLU")
    ax[0].plot(steps, s["leaky_alive"], label=f"LeakyReLU({s['alpha']})")
    ax[0].set(xlabel="SGD step", ylabel="share of units alive", title="dead hidden layer: recovery")
    ax[1].plot(steps, s["relu_loss"], label="ReLU")
    ax[1].plot(steps, s["leaky_loss"], label=f"LeakyReLU({s['alpha']})")
    ax[1].set(xlabel="SGD step", ylabel="cross-entropy", title="training loss")
    for x in ax:
        x.legend()
    _save(fig, path)


def plot_decay(s: dict, path: Path) -> None:
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.4))
    steps = range(1, len(s["decayed_bias"]) + 1)
    ax[0].plot(steps, s["decayed_bias"], lw=3, alpha=0.6, label="bias decayed")
    ax[0].plot(steps, s["kept_bias"], lw=3, alpha=0.6, label="bias excluded from decay")
    ax[0].plot(steps, s["law"], "k--", label="b₀(1−ηλ)ᵗ (predicted)")
    ax[0].set(xlabel="SGD step", ylabel="bias of the dead unit", title="bias under weight decay")
    ax[1].plot(steps, s["decayed_zmax"], label="bias decayed")
    ax[1].plot(steps, s["kept_zmax"], label="bias excluded")
    ax[1].axhline(0, color="k", lw=0.8)
    ax[1].set(xlabel="SGD step", ylabel="max over images of z", title="distance from recovery")
    for x in ax:
        x.legend(fontsize=8)
    _save(fig, path)


def plot_remedies(s: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, curve in s.items():
        ax.plot(range(1, len(curve) + 1), curve, label=name)
    ax.set(xlabel="SGD step", ylabel="share of forced-dead units alive",
           title="remedies on a digits MLP (30% forced dead)")
    ax.legend(fontsize=8)
    _save(fig, path)


PLOTS: dict[str, tuple[str, Callable[[dict, Path], None]]] = {
    "moments": ("moments.png", plot_moments),
    "depth": ("depth_variance.png", plot_depth),
    "grad_depth": ("sigmoid_vs_leaky_depth.png", plot_grad_depth),
    "recovery": ("dead_unit_recovery.png", plot_recovery),
    "decay": ("bias_decay.png", plot_decay),
    "remedies": ("remedies.png", plot_remedies),
}


def write_report(results: Sequence[ClaimResult], out: Path, seed: int, quick: bool,
                 torch_version: str) -> Path:
    """Draw every plot the results carry series for, then write ``out/report.md``."""
    out.mkdir(parents=True, exist_ok=True)
    for r in results:
        r.plots = []
        for key, series in r.series.items():
            name, draw = PLOTS[key]
            draw(series, out / name)
            r.plots.append(name)
    path = out / "report.md"
    path.write_text(render_markdown(results, seed, quick, torch_version), encoding="utf-8")
    return path
