"""Issue 7's promises that the apps' own tests leave open, proven on tiny runs.

- Exact resume: a SIGKILL in the middle of a checkpoint write (``LEAKYLAB_FAULT=mid_checkpoint:N``,
  a real subprocess) — for both apps, and during the very first checkpoint — then the same command
  again ends bit-identical to an uninterrupted run: every tensor of the final checkpoint (weights,
  optimizer, RNG, extra), metrics.jsonl (all but wall-clock keys), probes.jsonl and sample grids.
  (test_translation_cli covers a kill *after* a step; test_gan_train a resume by ``steps=``.)
- An explicit config change on resume (``--allow-config-change``) takes effect.
- Divergence guard: the run stops with the step and the last good checkpoint named, and no
  checkpoint of the diverged model is written.
- Multi-process: ``apps.translation.evaluate`` under ``accelerate launch`` with two CPU processes
  gives exactly the single-process result. (Two-process training, logging once and resuming on one
  process, is tested in test_gan_cli.py and test_translation_multiproc.py.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from apps.gan import train as gan_train
from apps.translation import evaluate as tr_evaluate
from apps.translation import train as tr_train
from common.errors import cli
from test_gan_train import tiny_args as gan_args
from test_translation_cli import tiny_args as tr_args
from test_translation_cli import write_multi30k
from test_translation_multiproc import free_port

ROOT = Path(__file__).resolve().parents[1]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
WALL_CLOCK = {"time", "images_per_s", "tokens_per_s"}  # the only keys allowed to differ


# -- helpers ------------------------------------------------------------------------------------


def kill_during(module: str, argv: list[str], fault: str) -> None:
    """Run ``python -m module argv`` with fault injection; it must die by SIGKILL."""
    env = {**os.environ, **ONE_THREAD, "LEAKYLAB_FAULT": fault}
    proc = subprocess.run([sys.executable, "-m", module, *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]


def checkpoint_names(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").iterdir())


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def assert_same(a, b, where: str) -> None:
    """Recursive exact equality of checkpoint contents (tensors bit for bit)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), (where, sorted(a), sorted(b))
        for k in a:
            assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


def assert_same_run(whole: Path, resumed: Path) -> None:
    """``resumed`` (killed and re-run) ended exactly where the uninterrupted ``whole`` did."""
    assert checkpoint_names(resumed) == checkpoint_names(whole)  # no .tmp- debris left behind
    name = checkpoint_names(whole)[-1]
    final, other = whole / "checkpoints" / name, resumed / "checkpoints" / name
    files = sorted(p.relative_to(final) for p in final.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(other) for p in other.rglob("*") if p.is_file())
    for rel in files:
        a, b = final / rel, other / rel
        if rel.suffix == ".safetensors":
            assert_same(load_file(str(a)), load_file(str(b)), str(rel))
        elif rel.suffix == ".pt":  # optimizer state, step, extra; every RNG
            assert_same(torch.load(a, weights_only=True), torch.load(b, weights_only=True), str(rel))
        else:
            strip = lambda d: {k: v for k, v in d.items() if k != "time"}  # noqa: E731
            assert strip(json.loads(a.read_text())) == strip(json.loads(b.read_text())), str(rel)
    timeless = lambda recs: [{k: v for k, v in r.items() if k not in WALL_CLOCK} for r in recs]  # noqa: E731
    assert timeless(jsonl(resumed / "metrics.jsonl")) == timeless(jsonl(whole / "metrics.jsonl"))
    assert jsonl(resumed / "probes.jsonl") == jsonl(whole / "probes.jsonl")
    for grid in sorted((whole / "samples").glob("*.png")) if (whole / "samples").is_dir() else []:
        assert (resumed / "samples" / grid.name).read_bytes() == grid.read_bytes(), grid.name


def fails(main, argv, capsys) -> str:
    """Run a command in-process; assert exit 2 with one stderr line; return stderr."""
    with pytest.raises(SystemExit) as exc:
        cli(main, argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    return err


# -- exact resume after a kill in the middle of a checkpoint write ---------------------------------


def test_gan_killed_while_writing_a_checkpoint_resumes_bit_identically(tmp_path):
    """Checkpoints at 3 and 6; the kill tears the step-6 checkpoint, so the re-run resumes from 3.
    The logging window (steps 3-4) and the probe window (steps 3-4) straddle that checkpoint."""
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    args = lambda out: gan_args(out, 6, "train.cpu=true")  # noqa: E731 - bit-identity is promised on the CPU
    gan_train.main(args(whole))
    kill_during("apps.gan.train", args(killed), "mid_checkpoint:6")
    assert checkpoint_names(killed) == [".tmp-step_00000006", "step_00000003"]  # the torn one is not "latest"
    gan_train.main(args(killed))  # the same command again
    assert_same_run(whole, killed)


def tr_fault_args(data: Path, out: Path) -> list[str]:
    """20 steps, checkpoints at 11 and 20, dropout on (its RNG must resume too), a probe window
    (3 steps) and the loss-logging window (10 steps) that both straddle the step-11 checkpoint."""
    return tr_args(data, out, 20) + ["model.dropout=0.1", "train.checkpoint_every=11", "probes.every=1",
                                     "probes.window=3", "train.cpu=true"]


@pytest.fixture(scope="module")
def tr_whole(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("trwhole")
    data = write_multi30k(base / "data")
    tr_train.main(tr_fault_args(data, base / "whole"))
    return data, base / "whole"


def test_translation_killed_while_writing_a_checkpoint_resumes_bit_identically(tr_whole, tmp_path):
    data, whole = tr_whole
    killed = tmp_path / "killed"
    kill_during("apps.translation.train", tr_fault_args(data, killed), "mid_checkpoint:20")
    assert checkpoint_names(killed) == [".tmp-step_00000020", "step_00000011"]
    tr_train.main(tr_fault_args(data, killed))
    assert_same_run(whole, killed)


def test_kill_during_the_first_checkpoint_restarts_cleanly(tr_whole, tmp_path):
    """No whole checkpoint at all: the re-run starts from step 0, and the records the killed
    process had logged must not be left beside the new ones."""
    data, whole = tr_whole
    killed = tmp_path / "killed"
    kill_during("apps.translation.train", tr_fault_args(data, killed), "mid_checkpoint:11")
    assert checkpoint_names(killed) == [".tmp-step_00000011"]
    assert [r["step"] for r in jsonl(killed / "metrics.jsonl")] == [10]  # logged before the kill
    tr_train.main(tr_fault_args(data, killed))
    assert_same_run(whole, killed)


# -- config changes on resume -----------------------------------------------------------------------


def test_allow_config_change_applies_the_new_learning_rate(tmp_path):
    """The optimizer state restored from the checkpoint must not bring the old lr back."""
    run = tmp_path / "run"
    gan_train.main(gan_args(run, 3, "optim.schedule=constant"))  # the lr the optimizer holds is the config's
    gan_train.main(["--allow-config-change",
                    *gan_args(run, 4, "optim.schedule=constant", "optim.lr_g=0.001", "optim.lr_d=0.003")])
    state = torch.load(run / "checkpoints" / "step_00000004" / "state.pt", weights_only=True)
    assert {g["lr"] for g in state["optimizers"]["G"]["param_groups"]} == {0.001}
    assert {g["lr"] for g in state["optimizers"]["D"]["param_groups"]} == {0.003}


def test_allow_config_change_may_follow_the_overrides(tr_whole, tmp_path):
    """``... key=value --allow-config-change`` is how users type it; argparse must accept it."""
    data, _ = tr_whole
    run = tmp_path / "run"
    tr_train.main(tr_args(data, run, 2) + ["train.checkpoint_every=2"])
    tr_train.main(tr_args(data, run, 4) + ["train.checkpoint_every=2", "optim.lr=0.002", "--allow-config-change"])
    assert "lr: 0.002" in (run / "config.yaml").read_text()
    assert checkpoint_names(run) == ["step_00000002", "step_00000004"]


# -- divergence guard --------------------------------------------------------------------------------


DIVERGED = ("error: training diverged: a loss became NaN/Inf at or before step 2; the last good checkpoint is "
            "'{ckpt}' (lower the learning rate or enable gradient clipping, then re-run)\n")


def test_gan_divergence_names_the_step_and_last_good_checkpoint(tmp_path, capsys):
    """G's lr 1e30 (D's as configured): step 1's losses come before G's first update and are
    finite (checkpoint 1 is written), step 2's, through the blown-up G, are not — whatever the
    step's noise (with D's lr 1e30 too, step 1's G loss went through the blown-up D and was
    non-finite for some seeds' streams). The guard's only reads are before checkpoints, so step
    2's checkpoint is refused."""
    run = tmp_path / "run"
    argv = gan_args(run, 10, "optim.lr_g=1e30", "train.checkpoint_every=1",
                    "train.check_every=50", "train.log_every=50", "train.sample_every=0")
    err = fails(gan_train.main, argv, capsys)
    assert err == DIVERGED.format(ckpt=run / "checkpoints" / "step_00000001")
    assert checkpoint_names(run) == ["step_00000001"]


def test_translation_divergence_names_the_step_and_last_good_checkpoint(tr_whole, tmp_path, capsys):
    data, _ = tr_whole
    run = tmp_path / "run"
    argv = tr_args(data, run, 10) + ["optim.lr=1e30", "optim.clip_norm=0", "optim.warmup=0",
                                     "optim.schedule=constant", "train.checkpoint_every=1", "train.check_every=50",
                                     "train.log_every=50", "train.eval_every=50"]
    err = fails(tr_train.main, argv, capsys)
    assert err == DIVERGED.format(ckpt=run / "checkpoints" / "step_00000001")
    assert checkpoint_names(run) == ["step_00000001"]


# -- multi-process evaluation -------------------------------------------------------------------------


def test_translation_evaluation_on_two_processes_equals_one(tmp_path):
    data = write_multi30k(tmp_path / "data")
    run = tmp_path / "run"
    tr_train.main(tr_args(data, run, 60))  # enough to translate something (BLEU well above 0)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(free_port()), "-m", "apps.translation.evaluate", "--run", str(run)]
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **ONE_THREAD}, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = json.loads((run / "eval.json").read_text())
    two_hyps = (run / two["hypotheses"]).read_text(encoding="utf-8")

    one = json.loads(json.dumps(tr_evaluate.evaluate(str(run), "test")))
    assert (run / one["hypotheses"]).read_text(encoding="utf-8") == two_hyps
    drop = lambda r: {k: v for k, v in r.items() if k != "decode_seconds"}  # noqa: E731
    assert drop(two) == drop(one)
    assert two["num_sentences"] == 30 and two["bleu"] > 1.0
    assert proc.stdout.count("test: BLEU") == 1  # the summary is printed once, not once per process


# -- step overhead -----------------------------------------------------------------------------------


def test_accelerated_optimizer_step_does_not_search_the_import_path(monkeypatch):
    """accelerate asks whether ``lomo_optim`` is installed on every optimizer step; make_accelerator
    caches the answer, so a step does no file-system search (4% of a small DCGAN step otherwise)."""
    import importlib.util

    from common.training import make_accelerator

    acc = make_accelerator("no", cpu=True)
    model = torch.nn.Linear(2, 1)
    model, opt = acc.prepare(model, torch.optim.SGD(model.parameters(), lr=0.1))
    acc.backward(model(torch.ones(1, 2)).sum())
    opt.step()  # the first call may search once
    searches = []
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda *a, **k: searches.append(a) or real(*a, **k))
    before = model.weight.detach().clone()
    acc.backward(model(torch.ones(1, 2)).sum())
    opt.step()
    assert searches == [] and not torch.equal(before, model.weight)  # the step still happened
