"""GAN commands on bad input (one line, exit 2, nothing damaged) and under ``accelerate launch``
with two CPU processes (gloo, one thread each): one set of logs and checkpoints, resumable on one."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from apps.gan import evaluate as evaluate_cmd
from apps.gan import sample as sample_cmd
from apps.gan import train as train_cmd
from common.errors import cli
from common.rundir import RunDir
from test_gan_eval import TINY_CLASSIFIER
from test_gan_train import records, tiny_args

ROOT = Path(__file__).resolve().parents[1]


def run_cli(main, argv, capsys) -> str:
    """Run a command in-process; assert exit status 2 and exactly one stderr line; return it."""
    with pytest.raises(SystemExit) as exc:
        cli(main, argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


@pytest.mark.parametrize("override, message", [
    ("data.image_size=12", "config key 'data.image_size': must be a power of two from 8 to 128 (got 12)"),
    ("data.image_size=256", "config key 'data.image_size': must be a power of two from 8 to 128 (got 256)"),
    ("train.batch_size=0", "config key 'train.batch_size': must be >= 1 (got 0)"),
    ("model.g_act=relu6", "config key 'model.g_act': must be one of relu, leaky_relu"),
    ("model.g_act_params={alpha: -1}", "config key 'model.g_act_params'"),
    ("data.channels=2", "config key 'data.channels': must be one of 1, 3 (got 2)"),
    ("train.batch_size=5000", "train.batch_size=5000 is larger than the 200 training images"),
])
def test_bad_config_values_end_with_one_line(tmp_path, capsys, override, message):
    line = run_cli(train_cmd.main, tiny_args(tmp_path / "run", 2, override), capsys)
    assert message in line


def test_missing_and_empty_data_folders_end_with_one_line(tmp_path, capsys):
    line = run_cli(train_cmd.main, tiny_args(tmp_path / "r1", 2, "data.source=folder",
                                             f"data.path={tmp_path / 'nowhere'}"), capsys)
    assert line == f"error: data.path '{tmp_path / 'nowhere'}' does not exist; point data.path at a folder of images"
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    line = run_cli(train_cmd.main, tiny_args(tmp_path / "r2", 2, "data.source=folder",
                                             f"data.path={tmp_path / 'empty'}"), capsys)
    assert "holds no readable images" in line


def test_run_directory_of_the_other_app_is_refused_and_left_alone(tmp_path, capsys):
    other = tmp_path / "translation_run"
    RunDir.create_or_resume(other, "translation", {"out": str(other), "seed": 0, "steps": 5})
    before = {p: p.read_bytes() for p in other.rglob("*") if p.is_file()}
    line = run_cli(train_cmd.main, tiny_args(other, 2), capsys)
    assert "is a run directory of the 'translation' app, not 'gan'" in line
    for argv, main in ((["--run", str(other)], evaluate_cmd.main), (["--run", str(other)], sample_cmd.main)):
        assert "'translation' app" in run_cli(main, argv, capsys)
    assert {p: p.read_bytes() for p in other.rglob("*") if p.is_file()} == before
    line = run_cli(sample_cmd.main, ["--run", str(tmp_path / "missing")], capsys)
    assert "does not exist" in line


def test_bad_input_as_a_real_process_prints_no_traceback(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "apps.gan.train", *tiny_args(tmp_path / "r", 2, "data.image_size=24")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: config key 'data.image_size': must be a power of two from 8 to 128 "
                                   "(got 24)")
    assert not (tmp_path / "r").exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_cpu_run_writes_one_set_of_logs_and_resumes_on_one(tmp_path):
    run = tmp_path / "two"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(free_port()), "-m", "apps.gan.train", *tiny_args(run, 4)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("gan: sklearn digits") == 1 and "2 process(es)" in proc.stdout
    # every gradient (D's last conv under the R1 penalty too) has its DDP bucket's layout
    assert "Grad strides do not match bucket view strides" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
    assert [r["step"] for r in records(run)] == [2, 4]  # once, not once per process
    probes = records(run, "probes.jsonl")
    assert len(probes) == len({(p["step"], p["model"], p["layer"]) for p in probes})
    ckpt = run / "checkpoints" / "step_00000004"
    assert json.loads((ckpt / "meta.json").read_text())["world_size"] == 2
    assert sorted(p.name for p in ckpt.glob("rng_*.pt")) == ["rng_0.pt", "rng_1.pt"]
    assert (run / "samples" / "final.png").is_file()

    # evaluation over two processes (each scores a slice, gathered) equals a one-process evaluation
    tiny_eval = [f"eval.cache_dir={tmp_path / 'cache'}", *TINY_CLASSIFIER]
    one = evaluate_cmd.evaluate(str(run), tiny_eval, write=False)  # also trains and caches the extractor
    cmd_eval = cmd[:cmd.index("-m", 3)] + ["-m", "apps.gan.evaluate", "--run", str(run), *tiny_eval]
    cmd_eval[cmd_eval.index("--main_process_port") + 1] = str(free_port())
    proc = subprocess.run(cmd_eval, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("wrote ") == 1
    two = json.loads((run / "eval.json").read_text())
    assert two["processes"] == 2 and two["extractor"] == one["extractor"]
    for key in ("fid", "fid_floor", "kid_mean", "confident_share", "class_kl"):
        assert two[key] == pytest.approx(one[key], rel=1e-5, abs=1e-9), key

    train_cmd.main(tiny_args(run, 6))  # the 2-process run resumes on one process
    assert [r["step"] for r in records(run)] == [2, 4, 6]


def test_divergence_stops_with_the_step_and_the_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    import apps.gan.step as step_mod

    real_d_loss = step_mod.d_loss
    calls = {"n": 0}

    def poisoned(r, f, kind):  # the 4th step's loss is NaN
        calls["n"] += 1
        loss = real_d_loss(r, f, kind)
        return loss * float("nan") if calls["n"] == 4 else loss

    monkeypatch.setattr(step_mod, "d_loss", poisoned)
    run = tmp_path / "run"
    line = run_cli(train_cmd.main, tiny_args(run, 8), capsys)
    assert line.startswith("error: training diverged: a loss became NaN/Inf at or before step 4; ")
    assert f"the last good checkpoint is '{run / 'checkpoints' / 'step_00000003'}'" in line
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000003"]  # nothing diverged saved
