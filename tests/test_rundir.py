"""Run directories: marker, config checks, atomic checkpoints, exact restore, safe loading."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field

import pytest
import torch

from common.errors import UserError
from common.rundir import FORMAT, MARKER, RunDir


def _model_and_opt(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model(torch.randn(5, 3)).square().sum().backward()
    opt.step()
    return model, opt


CFG = {"out": "x", "seed": 0, "steps": 10, "model": {"width": 4}}


def test_checkpoint_round_trip_restores_weights_optimizer_rng_and_logs(tmp_path):
    run = RunDir.create_or_resume(tmp_path / "r", "gan", CFG)
    assert (tmp_path / "r" / "leakylab.json").read_text().strip() == '{"app": "gan", "format": 1}'
    assert "width: 4" in (tmp_path / "r" / "config.yaml").read_text()
    model, opt = _model_and_opt()
    for step in (1, 2, 3, 4):
        run.log_metrics({"step": step, "loss": float(step)})
    run.log_probes([{"step": 4, "model": "G", "layer": "1", "dead_frac": 0.0}])
    torch.manual_seed(123)
    run.save_checkpoint(2, {"G": model}, {"G": opt}, extra={"ema_decay": 0.999, "order": [3, 1]})
    expected_draw = torch.rand(3)

    fresh, fresh_opt = _model_and_opt(seed=1)
    resumed = RunDir.create_or_resume(tmp_path / "r", "gan", {**CFG, "steps": 20})  # steps may grow
    state = resumed.load_checkpoint({"G": fresh}, {"G": fresh_opt})
    assert state == {"step": 2, "extra": {"ema_decay": 0.999, "order": [3, 1]}}
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(opt.state_dict()["state"][0]["exp_avg"], fresh_opt.state_dict()["state"][0]["exp_avg"])
    assert torch.equal(torch.rand(3), expected_draw)  # RNG restored exactly
    assert [r["step"] for r in resumed.read_jsonl("metrics.jsonl")] == [1, 2]  # cut back to the checkpoint
    assert resumed.read_jsonl("probes.jsonl") == []


def test_keeps_last_checkpoints_and_load_weights(tmp_path):
    run = RunDir.create_or_resume(tmp_path / "r", "gan", CFG)
    model, opt = _model_and_opt()
    for step in (10, 20, 30):
        run.save_checkpoint(step, {"G": model}, {"G": opt}, keep=2)
    assert [c.name for c in run.checkpoints()] == ["step_00000020", "step_00000030"]
    other, _ = _model_and_opt(seed=5)
    assert RunDir.open(tmp_path / "r", "gan").load_weights("G", other) == 30
    assert torch.equal(other[0].weight, model[0].weight)
    with pytest.raises(UserError, match="no checkpoint at step 10"):
        run.load_weights("G", other, step=10)
    with pytest.raises(UserError, match="has no weights for model 'D'"):
        run.load_weights("D", other)


def test_refuses_other_app_changed_config_foreign_dirs_and_unwritable(tmp_path):
    RunDir.create_or_resume(tmp_path / "r", "gan", CFG)
    with pytest.raises(UserError, match="is a run directory of the 'gan' app, not 'translation'"):
        RunDir.create_or_resume(tmp_path / "r", "translation", CFG)
    with pytest.raises(UserError, match=r"another config \(model.width: 4 -> 8\)"):
        RunDir.create_or_resume(tmp_path / "r", "gan", {**CFG, "model": {"width": 8}})
    # steps and the progress bar are not part of the experiment: they may change without the flag
    RunDir.create_or_resume(tmp_path / "r", "gan", {**CFG, "steps": 99, "train": {"progress": False}})
    RunDir.create_or_resume(tmp_path / "r", "gan", {**CFG, "model": {"width": 8}}, allow_config_change=True)
    assert "width: 8" in (tmp_path / "r" / "config.yaml").read_text()
    (tmp_path / "r" / "leakylab.json").write_text('{"app": "gan", "format": 99}')
    with pytest.raises(UserError, match="format 99"):
        RunDir.open(tmp_path / "r", "gan")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="is not a leakylab run directory"):
        RunDir.create_or_resume(tmp_path / "foreign", "gan", CFG)
    assert (tmp_path / "foreign" / "notes.txt").read_text() == "mine"
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(UserError, match="cannot write the run directory"):
            RunDir.create_or_resume(ro / "run", "gan", CFG)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch EXPLOITED",))


def test_pickled_code_in_a_checkpoint_is_never_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = RunDir.create_or_resume(tmp_path / "r", "gan", CFG)
    model, opt = _model_and_opt()
    ckpt = run.save_checkpoint(1, {"G": model}, {"G": opt})
    with open(ckpt / "state.pt", "wb") as fh:
        pickle.dump({"step": 1, "payload": _Exploit()}, fh)
    with pytest.raises(UserError, match="refusing to load .* pickled objects other than tensors"):
        run.load_checkpoint({"G": model}, {"G": opt})
    assert not (tmp_path / "EXPLOITED").exists()


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    run = RunDir.create_or_resume(tmp_path / "r", "gan", CFG)
    model, opt = _model_and_opt()
    ckpt = run.save_checkpoint(1, {"G": model}, {"G": opt})
    weights = ckpt / "models" / "G.safetensors"
    weights.write_bytes(weights.read_bytes()[:40])
    with pytest.raises(UserError, match="is corrupt or truncated"):
        run.load_checkpoint({"G": model}, {"G": opt})
    ckpt2 = run.save_checkpoint(2, {"G": model}, {"G": opt})
    (ckpt2 / "state.pt").write_bytes((ckpt2 / "state.pt").read_bytes()[:50])
    with pytest.raises(UserError, match="is corrupt or truncated"):
        run.load_checkpoint({"G": model}, {"G": opt})


def test_kill_during_checkpoint_write_leaves_previous_as_latest(tmp_path):
    script = textwrap.dedent(
        f"""
        import torch
        from common.rundir import RunDir
        run = RunDir.create_or_resume({str(tmp_path / 'r')!r}, "gan", {CFG!r})
        model = torch.nn.Linear(2, 2)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        run.save_checkpoint(1, {{"G": model}}, {{"G": opt}})
        run.save_checkpoint(2, {{"G": model}}, {{"G": opt}})
        """
    )
    env = {**os.environ, "LEAKYLAB_FAULT": "mid_checkpoint:2"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr  # SIGKILL mid-write
    run = RunDir.open(tmp_path / "r", "gan")
    assert [c.name for c in run.checkpoints()] == ["step_00000001"]
    assert (tmp_path / "r" / "checkpoints" / ".tmp-step_00000002").exists()  # debris ignored
    model = torch.nn.Linear(2, 2)
    assert run.load_checkpoint({"G": model}, {"G": torch.optim.SGD(model.parameters(), lr=0.1)})["step"] == 1



@dataclass
class _Model:
    width: int = 1


@dataclass
class _Schema:
    out: str = ""
    seed: int = 0
    steps: int = 1
    model: _Model = field(default_factory=_Model)


@dataclass
class _Narrower:  # a later app version without the model section
    out: str = ""
    seed: int = 0
    steps: int = 1


def test_typed_config_validates_the_stored_config_against_the_schema(tmp_path):
    RunDir.create_or_resume(tmp_path / "r", "gan", CFG)
    cfg = RunDir.open(tmp_path / "r", "gan").typed_config(_Schema)
    assert (cfg.steps, cfg.model.width) == (10, 4)
    with pytest.raises(UserError, match=r"config.yaml' does not fit this version of the app .*model"):
        RunDir.open(tmp_path / "r", "gan").typed_config(_Narrower)


def test_other_processes_wait_for_the_main_one_to_create_the_run(tmp_path):
    """A non-main process arriving while the main one is half-way through creating the directory
    (config written, marker not yet) must wait for it, not refuse a "foreign" directory."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text("steps: 3\n")  # the main process's first write

    class Rank1:
        is_main_process = False
        waited = 0

        def wait_for_everyone(self) -> None:  # the main process writes the marker while we wait
            self.waited += 1
            (out / MARKER).write_text(json.dumps({"app": "demo", "format": FORMAT}) + "\n")

    acc = Rank1()
    run = RunDir.create_or_resume(out, "demo", {"steps": 3}, accelerator=acc)
    assert acc.waited == 1 and run.path == out and not run.is_main
    with pytest.raises(UserError, match="not a leakylab run directory"):  # the main process still refuses it
        foreign = tmp_path / "foreign"
        foreign.mkdir()
        (foreign / "notes.txt").write_text("x")
        RunDir.create_or_resume(foreign, "demo", {"steps": 3})
