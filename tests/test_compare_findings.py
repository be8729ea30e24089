"""Committed evidence: ``--export`` mirrors only the small records of complete cells (and the
report) into findings/, ``--report-only`` rebuilds the report from those records alone, cells
record the commit they ran at, and the README's "What we found" is generated from the findings'
summary.json — checked against the real README on every run."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from apps.compare import findings
from apps.compare.config import load_preset
from apps.compare.export import export_cells, example_files, record_files
from apps.compare.main import main
from apps.compare.matrix import build_matrix
from common.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "findings_small"
PRESET = "findings_small.yaml"
GAN_CONFIG = str(ROOT / "configs" / "gan" / "digits.yaml")
RECORDS = {"cell.json", "run/leakylab.json", "run/config.yaml", "run/eval.json", "run/metrics.jsonl",
           "run/probes.jsonl"}


def _copy_fixture(tmp: Path) -> Path:
    """The fixture in ``tmp`` (tests must never write into the committed one)."""
    dst = tmp / "fx"
    shutil.copytree(FIXTURE, dst)
    return dst


def _args(fx: Path, tmp: Path, *extra: str) -> list[str]:
    """The fixture's preset with every folder in ``tmp`` (and the app config by absolute path)."""
    return ["--config", str(fx / PRESET), f"out={tmp / 'runs'}", f"report={tmp / 'rep'}",
            f"findings={fx / 'findings' / 'findings_small'}", f"studies.gan.config={GAN_CONFIG}", *extra]


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _verdicts(summary: dict) -> dict[str, str]:
    return {c["metric"]: c["verdict"] for s in summary["studies"] for c in s["comparisons"]}


def test_report_only_rebuilds_from_the_committed_records_alone(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    fx = _copy_fixture(tmp_path)
    finding = fx / "findings" / "findings_small"
    before = _files(finding)
    assert before and not (finding / "summary.json").exists()

    assert main(_args(fx, tmp_path, "--report-only")) == 0
    out, err = capsys.readouterr()
    # written in place, beside the records; the run directories and report: were never made
    assert f"report: {finding}/report.html" in out and "4 read from the records" in out
    assert not (tmp_path / "runs").exists() and not (tmp_path / "rep").exists()
    assert _files(finding) - before >= {"report.md", "report.html", "summary.json", "figures/gan_samples_relu.png"}
    assert {p for p in before if not (finding / p).is_file()} == set()  # no record removed

    summary = json.loads((finding / "summary.json").read_text())
    assert _verdicts(summary) == {"fid": "better", "kid_mean": "equivalent", "dead_frac.G": "better"}
    assert [(r["status"], r["source"]) for r in summary["cells"]] == [("complete", "record")] * 4
    gan = summary["studies"][0]
    means = {v["name"]: v["metrics"]["fid"]["mean"] for v in gan["variants"]}
    assert means == pytest.approx({"relu": 48.0, "leaky_0.2_G": 38.05})
    assert gan["budget"]["checks"][0]["status"] == "converged" and gan["dead_units"]["shows_up"]
    assert gan["extractor"]["hash"] == "0123456789abcdef0123"
    # the commits the cells ran at, and the warning that there are two
    assert [(v["commit"][:1], v["cells"]) for v in summary["code"]["versions"]] == [("a", 3), ("b", 1)]
    assert "2 different commits" in summary["code"]["warnings"][0] and "2 different commits" in err
    md = (finding / "report.md").read_text()
    assert "a" * 40 in md and "b" * 40 in md and "All 4 complete cells were read from these records" in md
    assert "figures/gan_samples_leaky_0.2_G.png" in md  # the examples read the records' final grids
    # the reproduce commands still name the cells' own run directories, not the records
    assert f"out={tmp_path / 'runs'}/gan/relu/seed0/run" in md


def _fake_out_cells(fx: Path, out: Path) -> None:
    """Run directories as a comparison leaves them: the fixture's records plus everything big."""
    src = fx / "findings" / "findings_small" / "cells"
    shutil.copytree(src, out)
    for cell in (p.parent for p in out.rglob("cell.json")):
        (cell / "train.log").write_text("training...\n")
        (cell / "eval.log").write_text("evaluating...\n")
        run = cell / "run"
        models = run / "checkpoints" / "step_00000040" / "models"
        models.mkdir(parents=True)
        (models / "G.safetensors").write_bytes(b"\0" * 64)
        (run / "checkpoints" / "step_00000040" / "state.pt").write_bytes(b"\0" * 64)
        (run / "model.bin").write_bytes(b"\0" * 8)
        (run / "tokenizer.json").write_text("{}")
        (run / "tb").mkdir()
        (run / "tb" / "events.out.tfevents.1").write_bytes(b"\0")
        (run / "samples").mkdir(exist_ok=True)
        (run / "samples" / "step_10.png").write_bytes(b"\x89PNG")


def test_export_mirrors_only_small_records_idempotently_and_additively(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    fx = tmp_path / "fx"
    fx.mkdir()
    shutil.copy(FIXTURE / PRESET, fx / PRESET)
    _fake_out_cells(FIXTURE, tmp_path / "runs")
    finding = fx / "findings" / "findings_small"

    assert main(_args(fx, tmp_path, "--export", "--report-only")) == 0
    out = capsys.readouterr().out
    assert "export: 4 complete cell(s)" in out and f"report: {finding}/report.html" in out
    assert not (tmp_path / "rep").exists()
    cells = finding / "cells" / "gan"
    for cell in (cells / v / f"seed{s}" for v in ("relu", "leaky_0.2_G") for s in (0, 1)):
        grid = {"run/samples/final.png"} if cell.name == "seed0" else set()
        assert _files(cell) == RECORDS | grid, cell  # no checkpoint, weights, tokenizer, tb/ or log
    summary = json.loads((finding / "summary.json").read_text())
    assert [r["source"] for r in summary["cells"]] == ["run"] * 4  # complete under out: read there

    # again: nothing changes
    assert main(_args(fx, tmp_path, "--export", "--report-only")) == 0
    assert "(0 file(s) written, 26 unchanged, 0 skipped)" in capsys.readouterr().out

    # a re-evaluated cell is re-exported; a cell gone from out keeps its record, and is read from it
    ev = tmp_path / "runs" / "gan" / "relu" / "seed1" / "run" / "eval.json"
    ev.write_text(ev.read_text().replace('"fid": 46.0', '"fid": 46.5'))
    shutil.rmtree(tmp_path / "runs" / "gan" / "leaky_0.2_G" / "seed1")
    assert main(_args(fx, tmp_path, "--export", "--report-only")) == 0
    assert "export: 3 complete cell(s)" in capsys.readouterr().out
    assert '"fid": 46.5' in (cells / "relu" / "seed1" / "run" / "eval.json").read_text()
    summary = json.loads((finding / "summary.json").read_text())
    assert [r["source"] for r in summary["cells"]] == ["run", "run", "run", "record"]
    assert all(r["status"] == "complete" for r in summary["cells"])

    # plain --report-only prefers complete run directories; with all four there it writes report:
    shutil.copytree(cells / "leaky_0.2_G" / "seed1", tmp_path / "runs" / "gan" / "leaky_0.2_G" / "seed1")
    assert main(_args(fx, tmp_path, "--report-only")) == 0
    assert f"report: {tmp_path / 'rep'}/report.html" in capsys.readouterr().out


def test_export_skips_large_files_with_a_warning(tmp_path: Path) -> None:
    _fake_out_cells(FIXTURE, tmp_path / "runs")
    cfg = load_preset(FIXTURE / PRESET, [f"out={tmp_path / 'runs'}"])
    warned: list[str] = []
    got = export_cells(build_matrix(cfg), tmp_path / "cells", warn=warned.append, max_bytes=300)
    # metrics.jsonl (380 B), probes.jsonl (~700 B) and cell.json (~700 B) are over this cap
    assert got.cells == 4 and len(warned) == 12 and len(got.skipped) == 12
    assert all("too large" in w for w in warned) and any("run/metrics.jsonl" in w for w in warned)
    assert not list((tmp_path / "cells").rglob("metrics.jsonl"))
    assert len(list((tmp_path / "cells").rglob("eval.json"))) == 4


def test_example_files_are_the_grid_and_the_named_hypotheses(tmp_path: Path) -> None:
    cfg = load_preset(FIXTURE / PRESET, [f"out={tmp_path / 'runs'}"])
    cell = build_matrix(cfg)[0]
    run = cell.run_dir
    (run / "samples").mkdir(parents=True)
    (run / "samples" / "final.png").write_bytes(b"png")
    (run / "hyp.test.de").write_text("ein Hund\n")
    (run / "test.hyp").write_text("old name\n")
    (run / "escape.pt").write_text("x")
    (run / "eval.json").write_text(json.dumps({"step": 40, "split": "test", "hypotheses": "hyp.test.de"}))
    assert example_files(cell) == ["samples/final.png", "hyp.test.de", "test.hyp"]
    for bad in ("../cell.json", "/etc/passwd", "escape.pt"):
        (run / "eval.json").write_text(json.dumps({"step": 40, "hypotheses": bad}))
        assert bad not in example_files(cell)
    (cell.dir / "cell.json").write_text("{}")
    assert set(record_files(cell)) == {"cell.json", "run/eval.json", "run/samples/final.png", "run/test.hyp"}


FAKE_PYTHON = r'''#!{python}
import json, sys
from pathlib import Path
mod, rest = sys.argv[2], sys.argv[3:]
if mod.endswith(".train"):
    kv = dict(a.split("=", 1) for a in rest[2:])
    run = Path(kv["out"])
    (run / "checkpoints" / "step_1" / "models").mkdir(parents=True, exist_ok=True)
    (run / "checkpoints" / "step_1" / "models" / "G.safetensors").write_bytes(b"0" * 16)
    (run / "leakylab.json").write_text('{{"app": "gan", "format": 1}}')
    (run / "config.yaml").write_text("seed: %s\ng_act: %s\n" % (kv["seed"], kv["model.g_act"]))
    (run / "metrics.jsonl").write_text(json.dumps({{"step": int(kv["steps"]), "time": 1.0, "loss_g": 1.0}}) + "\n")
    (run / "steps").write_text(kv["steps"])
else:
    run = Path(rest[rest.index("--run") + 1])
    seed = int(run.parent.name[4:])
    leaky = "leaky" in (run / "config.yaml").read_text()
    ev = {{"app": "gan", "step": int((run / "steps").read_text()), "fid": 30.0 + seed - (3.0 if leaky else 0.0),
          "kid_mean": 0.03}}
    (run / "eval.json").write_text(json.dumps(ev))
'''


def test_cells_record_their_commit_and_export_as_they_land(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    exe = tmp_path / "fakepython"
    exe.write_text(FAKE_PYTHON.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("LEAKYLAB_COMPARE_PYTHON", str(exe))
    monkeypatch.chdir(tmp_path)
    preset = tmp_path / "p.yaml"
    preset.write_text(json.dumps({
        "seeds": [0, 1], "jobs": 2,
        "studies": {"g": {"app": "gan", "config": GAN_CONFIG, "steps": 5, "seconds_per_cell": 1,
                          "variants": {"relu": {"model.g_act": "relu"}, "leaky": {"model.g_act": "leaky_relu"}}}},
    }))
    landed: list[str] = []
    import apps.compare.main as cli_main
    real = cli_main._export

    def spy(cells, records, quiet=False):  # the per-cell export happens inside the run, one cell at a time
        if quiet:
            landed.append(cells[0].key)
            assert (cells[0].dir / "cell.json").is_file()
        real(cells, records, quiet)

    monkeypatch.setattr(cli_main, "_export", spy)
    assert main(["--config", str(preset), "--export"]) == 0
    out = capsys.readouterr().out
    assert sorted(landed) == ["g/leaky/seed0", "g/leaky/seed1", "g/relu/seed0", "g/relu/seed1"]
    assert "report: findings/p/report.html" in out and "python -m apps.compare.findings" in out
    assert not Path("reports").exists()  # --export writes the report to findings/, not report:

    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        head = None
    book = json.loads((tmp_path / "runs/compare/p/g/relu/seed0/cell.json").read_text())
    assert book["commit"] == head and (book["dirty"] in (True, False) if head else book["dirty"] is None)
    record = json.loads((tmp_path / "findings/p/cells/g/relu/seed0/cell.json").read_text())
    assert record["commit"] == head
    assert _files(tmp_path / "findings/p/cells/g/relu/seed0") == {
        "cell.json", "run/leakylab.json", "run/config.yaml", "run/eval.json", "run/metrics.jsonl"}
    summary = json.loads((tmp_path / "findings/p/summary.json").read_text())
    assert summary["code"]["versions"][0]["commit"] == head and summary["code"]["versions"][0]["cells"] == 4

    # a re-evaluation records its own commit and keeps the training's
    assert main(["--config", str(preset), "--reevaluate"]) == 0
    book = json.loads((tmp_path / "runs/compare/p/g/relu/seed0/cell.json").read_text())
    assert book["commit"] == head and book["train_commit"] == head and "train_dirty" in book

    # a later sitting on a fresh clone (no run directories): the recorded cells are not run again
    shutil.rmtree(tmp_path / "runs")
    landed.clear()
    capsys.readouterr()
    assert main(["--config", str(preset), "--export"]) == 0
    out = capsys.readouterr().out
    assert landed == [] and "4 cell(s) complete in their records" in out and "4/4 cells complete" in out
    assert not (tmp_path / "runs/compare/p/g/relu/seed0").exists()
    shutil.rmtree(tmp_path / "findings/p/cells/g/leaky/seed1")  # a deleted record is run again
    assert main(["--config", str(preset), "--export"]) == 0
    assert landed == ["g/leaky/seed1"] and "3 cell(s) complete in their records" in capsys.readouterr().out


# ---------------------------------------------------------------- the README's "What we found"

def test_readme_what_we_found_is_generated_from_the_committed_findings() -> None:
    """The committed README's numbers come from findings/*/summary.json, never from a hand."""
    assert findings.START in (ROOT / "README.md").read_text()
    assert findings.check(ROOT / "README.md", ROOT / "findings"), \
        "README.md's 'What we found' is stale: run python -m apps.compare.findings"
    assert findings.main(["--check"]) == 0


def test_findings_block_renders_the_fixture(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    fx = _copy_fixture(tmp_path)
    assert main(_args(fx, tmp_path, "--report-only")) == 0
    block = findings.render_block(fx / "findings", fx)
    lines = block.splitlines()
    assert lines[0] == "### findings_small — hand-made records for the tests"
    assert ("Full report: [findings/findings_small/report.md](findings/findings_small/report.md)" in block
            and "cells at commit `aaaaaaaaaa`, `bbbbbbbbbb`" in block)
    assert ("| gan | FID ↓ | relu: 48.0 [22.6, 73.4] | leaky_0.2_G: 38.0 [13.3, 62.8] | -9.95 [-10.6, -9.31] "
            "| ±2.40 | better | 2 | 40 steps, FID converged | `configs/gan/digits.yaml`, extractor classifier "
            "0123456789ab |") in lines
    assert sum(line.startswith("| gan | ") for line in lines) == 2  # FID and KID; dead units have their story
    assert ("- leaky_0.2_G vs relu on FID: better: -9.95 FID (95% CI -10.6 to -9.31), beyond δ ±2.40 FID — "
            "final quality at this recipe (the curves had flattened).") in lines
    assert ("- leaky_0.2_G vs relu on KID: equivalent within ±0.00480 KID — final quality at this recipe "
            "(the curves had flattened).") in lines
    assert any(line.startswith("- gan: the dead-unit story shows up") for line in lines)
    assert any(line.startswith("- Warning: The cells ran at 2 different commits") for line in lines)

    # a study still improving at its budget: the sentences say it contrasts learning speed
    path = fx / "findings" / "findings_small" / "summary.json"
    summary = json.loads(path.read_text())
    for c in summary["studies"][0]["comparisons"]:
        c["learning_speed"] = True
    path.write_text(json.dumps(summary))
    assert ("- leaky_0.2_G vs relu on KID: equivalent within ±0.00480 KID — learning speed at this budget, "
            "not final quality.") in findings.render_block(fx / "findings", fx).splitlines()

    # the leader still gaining, the arm behind flat: a gap more training would not close, not "flattened"
    for c in summary["studies"][0]["comparisons"]:
        c["learning_speed"] = False
    for k in summary["studies"][0]["budget"]["checks"]:
        k["status"] = "still improving"
        k["gains"] = {**k["gains"], "leaky_0.2_G": 3 * k["threshold"]}  # leaky leads on FID
    path.write_text(json.dumps(summary))
    lines = findings.render_block(fx / "findings", fx).splitlines()
    assert ("- leaky_0.2_G vs relu on FID: better: -9.95 FID (95% CI -10.6 to -9.31), beyond δ ±2.40 FID — "
            "a gap more training would not close at this recipe (the arm behind had stopped improving; the "
            "leader was still gaining).") in lines
    assert not any("flattened" in line for line in lines if " on FID: " in line)

    # a second finding whose verdicts speak of learning speed is listed after one that speaks of quality
    speedy = json.loads(path.read_text())
    speedy["title"] = "aaa — short budget"
    for c in speedy["studies"][0]["comparisons"]:
        c["learning_speed"] = True
    (fx / "findings" / "aaa").mkdir()
    (fx / "findings" / "aaa" / "summary.json").write_text(json.dumps(speedy))
    heads = [line for line in findings.render_block(fx / "findings", fx).splitlines() if line.startswith("### ")]
    assert heads == ["### findings_small — hand-made records for the tests", "### aaa — short budget"]
    shutil.rmtree(fx / "findings" / "aaa")

    # the command rewrites the block between the markers, and --check catches a hand edit
    readme = fx / "README.md"
    readme.write_text(f"# x\n\nintro\n\n## What we found\n\n{findings.START}\nold\n{findings.END}\n\n## next\n")
    common = ["--readme", str(readme), "--findings", str(fx / "findings")]
    assert findings.main(["--check", *common]) == 1
    assert findings.main(common) == 0 and findings.main(["--check", *common]) == 0
    text = readme.read_text()
    assert text.startswith("# x\n\nintro\n\n## What we found\n\n") and text.endswith(f"{findings.END}\n\n## next\n")
    readme.write_text(text.replace("-9.95 [", "-9.90 ["))
    assert findings.main(["--check", *common]) == 1
    assert "differs from the 1 finding(s)" in capsys.readouterr().err


def test_findings_block_without_findings_or_markers(tmp_path: Path) -> None:
    assert findings.render_block(tmp_path / "none", tmp_path) == findings.NONE_YET
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    with pytest.raises(UserError, match="findings:start"):
        findings.main(["--readme", str(readme), "--findings", str(tmp_path)])
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "summary.json").write_text("[1, 2]")
    with pytest.raises(UserError, match="not a comparison summary"):
        findings.load_findings(tmp_path)
