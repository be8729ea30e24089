"""The runner with a fake fast app: cells run as subprocesses, failures are contained, complete
cells are skipped, an interrupted cell resumes where its app stopped."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from apps.compare.config import CompareConfig
from apps.compare.main import main
from apps.compare.matrix import build_matrix
from apps.compare.procs import cell_env
from apps.compare.runner import Estimator, fmt_duration, run_matrix
from common.config import config_from_dict
from common.errors import UserError

# Stands in for the Python interpreter: understands `-m apps.<app>.train|evaluate ...` exactly as
# the runner calls them, resumes from its own state file, and can be told to die at a step.
FAKE_PYTHON = r'''#!{python}
import json, os, sys, time
from pathlib import Path
args = sys.argv[1:]
assert args[0] == "-m", args
mod, rest = args[1], args[2:]
events = Path(os.environ["FAKE_EVENTS"])
def event(what):
    with open(events, "a") as fh:
        fh.write(json.dumps({{"t": time.time(), "what": what, "mod": mod, "args": rest, "pid": os.getpid()}}) + "\n")
event("start")
if mod.endswith(".train"):
    assert rest[0] == "--config", rest
    kv = dict(a.split("=", 1) for a in rest[2:])
    run, steps, seed = Path(kv["out"]), int(kv["steps"]), int(kv["seed"])
    run.mkdir(parents=True, exist_ok=True)
    (run / "leakylab.json").write_text(json.dumps({{"app": mod.split(".")[1], "format": 1}}))
    (run / "config.yaml").write_text("".join(f"{{k}}: {{v}}\n" for k, v in kv.items()))
    state = run / "state.json"
    start = json.loads(state.read_text())["step"] if state.exists() else 0
    die_at = int(os.environ.get("FAKE_DIE_AT", "0"))
    for step in range(start + 1, steps + 1):
        if step == die_at and kv.get("model.g_act") == "relu":
            print("killed", flush=True)
            event("end")
            sys.exit(137)
        time.sleep(float(os.environ.get("FAKE_STEP_S", "0.01")))
        with open(run / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps({{"step": step, "time": time.time(), "loss": 1.0 / step}}) + "\n")
        state.write_text(json.dumps({{"step": step}}))
    print("trained", steps, "threads", os.environ["OMP_NUM_THREADS"], flush=True)
else:
    run = Path(rest[rest.index("--run") + 1])
    step = json.loads((run / "state.json").read_text())["step"]
    leaky = "leaky" in (run / "config.yaml").read_text()
    seed = int([l for l in (run / "config.yaml").read_text().splitlines() if l.startswith("seed:")][0].split()[1])
    ev = {{"app": "gan", "step": step, "fid": 20.0 + seed - (2.0 if leaky else 0.0), "kid_mean": 0.01,
          "extractor": {{"name": "classifier", "hash": "h", "heldout_accuracy": 0.99}}}}
    (run / "eval.json").write_text(json.dumps(ev))
event("end")
'''


@pytest.fixture()
def fake_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    exe = tmp_path / "fakepython"
    exe.write_text(FAKE_PYTHON.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("FAKE_EVENTS", str(tmp_path / "events.jsonl"))
    monkeypatch.setenv("LEAKYLAB_COMPARE_PYTHON", str(exe))  # the CLI must never reach the real apps here
    monkeypatch.chdir(tmp_path)
    return exe


def _cfg(tmp: Path, seeds: list[int]) -> CompareConfig:
    return config_from_dict(CompareConfig, {
        "out": str(tmp / "runs"), "report": str(tmp / "report"), "seeds": seeds, "jobs": 2,
        "studies": {"g": {"app": "gan", "config": "gan.yaml", "steps": 20, "baseline": "relu", "seconds_per_cell": 3,
                          "variants": {"relu": {"model.g_act": "relu"}, "leaky": {"model.g_act": "leaky_relu"}}}},
    })


def _events(tmp: Path) -> list[dict]:
    p = tmp / "events.jsonl"
    return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []


def test_cells_run_fail_resume_and_skip(tmp_path: Path, fake_python: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _cfg(tmp_path, [0, 1])
    cells = build_matrix(cfg)
    assert [c.key for c in cells] == ["g/relu/seed0", "g/leaky/seed0", "g/relu/seed1", "g/leaky/seed1"]

    # First pass: the relu cells are "killed" at step 7 — they fail, the others finish.
    monkeypatch.setenv("FAKE_DIE_AT", "7")
    said: list[str] = []
    out = run_matrix(cells, Path(cfg.out), {"g": 3.0}, jobs=2, python=str(fake_python), say=said.append)
    monkeypatch.delenv("FAKE_DIE_AT")
    assert said[0].startswith("matrix: 4 cells") and "4 to run" in said[0] and said[1].startswith("estimated time:")
    assert {o.cell.key: o.ok for o in out} == {"g/relu/seed0": False, "g/leaky/seed0": True,
                                               "g/relu/seed1": False, "g/leaky/seed1": True}
    assert sum(s.startswith("[FAILED") for s in said) == 2 and any(s.endswith("| killed") for s in said)
    relu0 = cells[0]
    assert json.loads((relu0.dir / "cell.json").read_text())["failed_stage"] == "train"
    book = json.loads((cells[1].dir / "cell.json").read_text())
    assert book["returncode"] == 0 and book["train_cpu_s"] > 0 and book["wall_s"] >= book["train_s"] > 0
    assert "trained 20 threads 1" in (cells[1].dir / "train.log").read_text()  # one thread per cell

    # The first cell of the study finished before any sibling started (caches are built once).
    ev = _events(tmp_path)
    first_end = min(e["t"] for e in ev if e["what"] == "end" and "relu/seed0" in " ".join(e["args"]))
    others = [e for e in ev if e["what"] == "start" and "relu/seed0" not in " ".join(e["args"])]
    assert len(others) == 5 and all(e["t"] >= first_end for e in others)  # 3 trains + 2 evaluates

    # Second pass: only the two killed cells run, and they continue from step 7, not from 0.
    (tmp_path / "events.jsonl").unlink()
    out = run_matrix(cells, Path(cfg.out), {"g": 3.0}, jobs=2, python=str(fake_python), say=lambda s: None)
    assert sorted(o.cell.key for o in out) == ["g/relu/seed0", "g/relu/seed1"] and all(o.ok for o in out)
    steps = [json.loads(line)["step"] for line in (relu0.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 21))
    assert json.loads((relu0.dir / "cell.json").read_text())["resumed"] is True
    assert all(c.is_complete() for c in cells)

    # Third pass: nothing to do, nothing started.
    (tmp_path / "events.jsonl").unlink()
    said = []
    assert run_matrix(cells, Path(cfg.out), {"g": 3.0}, jobs=2, python=str(fake_python), say=said.append) == []
    assert "4 complete, 0 to run" in said[0] and not _events(tmp_path)

    # --reevaluate: every cell's evaluate runs again, no train does; training figures are kept.
    train_s = json.loads((cells[1].dir / "cell.json").read_text())["train_s"]
    out = run_matrix(cells, Path(cfg.out), {"g": 3.0}, jobs=2, python=str(fake_python), say=said.append,
                     reevaluate=True)
    assert len(out) == 4 and all(o.ok for o in out)
    assert any("0 complete, 4 to run (4 only to evaluate again)" in line for line in said)
    assert {e["mod"] for e in _events(tmp_path)} == {"apps.gan.evaluate"}
    assert json.loads((cells[1].dir / "cell.json").read_text())["train_s"] == train_s


def test_cli_writes_report_and_refuses_bad_presets(tmp_path: Path, fake_python: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = _cfg(tmp_path, [0, 1])
    cells = build_matrix(cfg)
    run_matrix(cells, Path(cfg.out), {"g": 3.0}, jobs=2, python=str(fake_python), say=lambda s: None)
    preset = tmp_path / "p.yaml"
    (tmp_path / "gan.yaml").write_text("steps: 1\n")
    preset.write_text(json.dumps({"seeds": [0, 1], "out": str(tmp_path / "runs"), "report": str(tmp_path / "rep"),
                                  "studies": {"g": {"app": "gan", "config": "gan.yaml", "steps": 20,
                                                    "variants": {"relu": {"model.g_act": "relu"},
                                                                 "leaky": {"model.g_act": "leaky_relu"}}}}}))
    # Every cell is complete, so the CLI runs nothing (it would call the real apps) and reports.
    assert main(["--config", str(preset)]) == 0
    printed = capsys.readouterr().out
    assert "4 complete, 0 to run" in printed and "report: " in printed
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    fid = next(c for c in summary["studies"][0]["comparisons"] if c["metric"] == "fid")
    assert fid["diff"] == pytest.approx(-2.0) and fid["verdict"] == "better"  # the same shift on every seed
    assert "on every one of the 2 seeds" in fid["sentence"]

    with pytest.raises(UserError, match="studies.g.baseline"):
        main(["--config", str(preset), "studies.g.baseline=gelu"])
    with pytest.raises(UserError, match="studies.g.config"):
        main(["--config", str(preset), "studies.g.config=nope.yaml"])
    with pytest.raises(UserError, match="unknown config key 'studies.g.steeps'"):
        main(["--config", str(preset), "studies.g.steeps=3"])
    with pytest.raises(UserError, match="study 'g', variant 'relu': unknown config key 'model.g_actt'"):
        main(["--config", str(preset), "studies.g.variants.relu.model.g_actt=relu"])  # checked before running
    with pytest.raises(UserError, match="set by the runner"):
        main(["--config", str(preset), "studies.g.variants.relu.seed=3"])


def test_estimates_and_environment() -> None:
    assert fmt_duration(75) == "1m15s" and fmt_duration(4000) == "1h06m" and fmt_duration(5) == "5s"
    est = Estimator({"a": 60.0}, [])
    assert est.per_cell("a") == 60.0 and est.source("a") == "preset estimate"
    est.add("a", 30.0)
    est.add("a", 50.0)
    assert est.per_cell("a") == 40.0 and est.source("a") == "measured on 2 cells"
    env = cell_env(1, {"PATH": "/bin", "OMP_NUM_THREADS": "8"})
    assert env["OMP_NUM_THREADS"] == "1" and env["MKL_NUM_THREADS"] == "1" and env["PYTHONPATH"]


def test_killing_the_comparison_ends_its_cells_and_a_rerun_finishes_them(
        tmp_path: Path, fake_python: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    preset = tmp_path / "p.yaml"
    (tmp_path / "gan.yaml").write_text("steps: 1\n")
    preset.write_text(json.dumps({"seeds": [0, 1], "out": str(tmp_path / "runs"), "report": str(tmp_path / "rep"),
                                  "jobs": 2, "studies": {"g": {"app": "gan", "config": "gan.yaml", "steps": 20,
                                  "variants": {"relu": {"model.g_act": "relu"}, "leaky": {"model.g_act": "leaky_relu"}}}}}))
    env = dict(os.environ, LEAKYLAB_COMPARE_PYTHON=str(fake_python), FAKE_STEP_S="0.5")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    proc = subprocess.Popen([sys.executable, "-m", "apps.compare", "--config", str(preset)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not any(e["what"] == "start" for e in _events(tmp_path)):
        time.sleep(0.2)
    time.sleep(1.5)  # a few steps in
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0, out
    (train,) = [e for e in _events(tmp_path) if e["what"] == "start"]  # the first cell ran alone
    assert "relu/seed0" in " ".join(train["args"])
    with pytest.raises(ProcessLookupError):  # its process was ended with the comparison
        os.kill(train["pid"], 0)
    assert not (tmp_path / "runs" / ".compare.lock").exists()
    cells = build_matrix(config_from_dict(CompareConfig, json.loads(preset.read_text())))
    done_before = json.loads((cells[0].run_dir / "state.json").read_text())["step"]
    assert 0 < done_before < 20 and not (cells[0].dir / "cell.json").exists()  # neither done nor failed

    monkeypatch.setenv("FAKE_STEP_S", "0.001")
    assert main(["--config", str(preset)]) == 0
    assert all(c.is_complete() for c in cells)
    steps = [json.loads(line)["step"] for line in (cells[0].run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 21))  # resumed after the kill, not restarted
    assert (tmp_path / "rep" / "report.html").is_file()


def test_orphaned_cells_of_a_killed_comparison_block_a_new_one(tmp_path: Path, fake_python: Path) -> None:
    cfg = _cfg(tmp_path, [0])
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "apps.gan.train"])
    cmdline = Path(f"/proc/{sleeper.pid}/cmdline")
    while b"apps.gan.train" not in cmdline.read_bytes():  # until it has exec'd
        time.sleep(0.05)
    try:
        root = Path(cfg.out)
        root.mkdir(parents=True)
        (root / ".compare.lock").write_text(json.dumps({"pid": 999999999, "children": [sleeper.pid]}))
        with pytest.raises(UserError, match=f"still running.*{sleeper.pid}"):
            run_matrix(build_matrix(cfg), root, {}, jobs=1, python=str(fake_python), say=lambda s: None)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert len(run_matrix(build_matrix(cfg), root, {}, jobs=1, python=str(fake_python), say=lambda s: None)) == 2
