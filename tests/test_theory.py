"""The theory check (apps.theory): every claim of docs/science.md passes, every negative control misses,
the report and its plots are written, and the statistics behind the tolerances are right.

The claims run once per session in quick mode (real measurements on smaller samples).
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from apps.theory import run_claims
from apps.theory.__main__ import main
from apps.theory.report import write_report
from apps.theory.results import Check, ClaimResult, batch_estimate, binomial, log_check, z_check
from common.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def results() -> list[ClaimResult]:
    torch.set_num_threads(1)
    return run_claims(seed=0, quick=True)


def test_all_eight_claims_measured_in_order(results: list[ClaimResult]) -> None:
    assert [r.number for r in results] == list(range(1, 9))
    for r in results:
        assert r.checks and r.controls, f"claim {r.number} needs checks and negative controls"
        assert all(math.isfinite(c.tol) and c.tol >= 0 for c in r.checks + r.controls)


@pytest.mark.parametrize("number", range(1, 9))
def test_claim_passes_and_controls_fail(results: list[ClaimResult], number: int) -> None:
    r = results[number - 1]
    failing = [(c.name, c.predicted, c.measured, c.tol) for c in r.checks if not c.holds]
    assert not failing, f"claim {number}: checks fail: {failing}"
    holding = [(c.name, c.predicted, c.measured, c.tol) for c in r.controls if c.holds]
    assert not holding, f"claim {number}: negative controls agree with the prediction: {holding}"
    assert r.passed


def test_key_figures_are_the_predicted_ones(results: list[ClaimResult]) -> None:
    """Spot values, independent of the tolerance machinery."""
    by = {r.number: {c.name: c for c in r.checks + r.controls} for r in results}
    relu = by[1]["ReLU: P(grad = 0)"].measured
    assert abs(relu - 0.5) < 0.02
    assert by[1]["LeakyReLU(α=0.01): P(grad = 0)"].measured == 0.0
    assert abs(by[2]["α=0.2: E[G] = (1+α)/2"].measured - 0.6) < 0.01
    assert abs(by[2]["α=0.2: Var(G) = (1−α)²/4"].measured - 0.16) < 0.005
    rate = by[3]["torch kaiming_normal_ (a=0), α=0.5: forward per-layer rate"].measured
    assert 1.15 < rate < 1.35  # (1 + 0.25)/2 · 2 = 1.25 per layer
    assert by[4]["LeakyReLU(2): sup ratio against ≤ 1"].measured == pytest.approx(2.0)
    assert by[5]["ReLU: largest update of a dead unit over 150 SGD steps"].measured == 0.0
    assert by[5]["LeakyReLU(0.2): dead units (of 32) alive again after 150 steps"].measured >= 1
    assert by[6]["bias excluded from decay: max |b_t − b₀| while dead"].measured == 0.0


def test_report_and_plots_written(results: list[ClaimResult], tmp_path: Path) -> None:
    path = write_report(results, tmp_path, seed=0, quick=True, torch_version="x")
    text = path.read_text(encoding="utf-8")
    assert "**8/8 claims pass.**" in text
    assert "| # | claim | predicted | measured | tolerance | pass/fail | controls |" in text
    for n in range(1, 9):
        assert f"## {n}. " in text
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(pngs) >= 6
    for name in pngs:
        assert f"]({name})" in text, f"{name} not referenced from the report"
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    # deterministic: same results, same file
    again = write_report(results, tmp_path / "again", seed=0, quick=True, torch_version="x")
    assert again.read_text(encoding="utf-8") == text


def test_cli_writes_report_and_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--out", str(tmp_path), "--quick", "--claims", "1,2,8"]) == 0
    out = capsys.readouterr().out
    assert "3/3 claims pass" in out
    assert (tmp_path / "report.md").exists() and (tmp_path / "moments.png").exists()


def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    with pytest.raises(UserError):
        main(["--claims", "9"])
    with pytest.raises(UserError):
        main(["--seed", "-1"])
    proc = subprocess.run([sys.executable, "-m", "apps.theory", "--claims", "x", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: --claims") and "\n" not in proc.stderr.strip()


def test_failing_claim_gives_exit_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A claim whose control agrees with the prediction fails, and the CLI exits 1."""
    import apps.theory as theory

    def fake(seed: int, quick: bool) -> ClaimResult:
        ok = Check("x", 0.5, 0.5, 0.01)
        return ClaimResult(1, "fake", "fake", [ok], [Check("ctl", 0.5, 0.501, 0.01)])

    monkeypatch.setattr(theory, "claim_functions", lambda: [fake])
    assert main(["--out", str(tmp_path)]) == 1
    assert "FAIL" in (tmp_path / "report.md").read_text(encoding="utf-8")


# --- the statistics behind the tolerances ------------------------------------------------------


def test_check_relations() -> None:
    assert Check("a", 1.0, 1.04, 0.05).holds and not Check("a", 1.0, 1.06, 0.05).holds
    assert Check("a", 1.0, 1.04, 0.05, "le").holds and not Check("a", 1.0, 1.06, 0.05, "le").holds
    assert Check("a", 0.0, 0.0, 0.0, "ge").holds and not Check("a", 0.0, 0.0, 0.0, "ge", strict=True).holds
    assert Check("a", 0.0, 0.3, 0.2, "gt").holds and not Check("a", 0.0, 0.1, 0.2, "gt").holds
    assert not Check("a", 0.0, float("nan"), 1.0).holds
    assert log_check("r", 2.0, math.log(2.1), 0.01).holds  # |ln 2.1 − ln 2| = 0.049 ≤ 0.05
    assert not log_check("r", 2.0, math.log(2.2), 0.01).holds


def test_binomial_and_batch_standard_errors() -> None:
    assert binomial(50, 100) == pytest.approx((0.5, 0.05))
    assert binomial(0, 100) == (0.0, 0.0)
    # batch means: SE of the mean of i.i.d. N(0, 1) over 40 000 samples is 1/200
    x = torch.randn(40000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    m, se = batch_estimate(x, 40, "mean")
    assert se == pytest.approx(1 / 200, rel=0.35)
    # the variance of a two-point ±1 variable: the delta-method SE is 0, batch means' is not
    g = torch.where(torch.rand(40000, generator=torch.Generator().manual_seed(1)) < 0.5, 1.0, -1.0)
    v, vse = batch_estimate(g, 40, "var")
    assert v == pytest.approx(1.0, abs=1e-3) and vse > 0
    assert z_check("c", 1.0, v, vse).holds
