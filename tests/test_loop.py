"""common.loop: the cadence after each step, the logging window across a checkpoint, the shared
loop config keys. A stand-in "step" adds known values to the window, so the logged means are
checked against arithmetic, not against another run of the same code."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from apps.gan.config import GanConfig
from apps.translation.config import TranslationConfig
from common.config import ConfigError, config_from_dict, config_to_dict, dump_yaml
from common.errors import UserError
from common.loop import LogWindow, LoopConfig, TrainLoop, start_accelerator
from common.probes import ProbeConfig, attach_probes
from common.remedies import RemedyConfig, Remedies
from common.rundir import RunDir


def values(step: int) -> tuple[float, float]:
    """The two values the stand-in step logs at ``step``: exact in float32, different every step."""
    return 0.25 * step, 1.0 + 0.5 * (step % 3)


def run_loop(out: Path, steps: int, cfg: LoopConfig, stop_after: int | None = None, nan_at: int = -1) -> None:
    """Train a stand-in for ``steps`` steps; ``stop_after`` ends the process-like run abruptly after
    that many steps (no final checkpoint, as a kill would), ``nan_at`` makes that step's loss NaN."""
    accelerator = start_accelerator(cfg, seed=0)
    run = RunDir.create_or_resume(out, "looptest", {"train": config_to_dict(cfg)}, accelerator)
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    probes = attach_probes({"m": model}, ProbeConfig(enabled=False))
    remedies = Remedies(RemedyConfig(), {"m": model}, {"opt": opt}, probes)
    loop = TrainLoop(cfg, steps, run, accelerator, probes, remedies, window=("a", "b"))
    loop.resume({"m": model}, {"opt": opt})
    loop.begin()
    for step in range(loop.start, steps):
        a, b = values(step)
        loss = torch.tensor(float("nan") if step == nan_at else a)
        loop.window.add(loss, torch.tensor(b))
        loop.guard.update(loss)
        done = loop.after_step(step, work=10)
        if loop.log_due(done):
            means = loop.window.read()
            loop.log({"step": done, **means, "per_s": loop.window.per_second()})
        if loop.checkpoint_due(done):
            loop.checkpoint(done, extra={"app_key": done})
        if done == stop_after:
            return
    loop.end()


def records(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def test_records_and_checkpoints_follow_the_cadence_and_log_window_means(tmp_path):
    cfg = LoopConfig(log_every=3, checkpoint_every=4, keep_checkpoints=10, progress=False, tracker="none", cpu=True)
    run_loop(tmp_path / "run", 10, cfg)
    recs = records(tmp_path / "run")
    assert [r["step"] for r in recs] == [3, 6, 9, 10]  # every log_every, and the last step
    windows = [range(0, 3), range(3, 6), range(6, 9), range(9, 10)]
    for rec, window in zip(recs, windows):
        assert rec["a"] == sum(values(s)[0] for s in window) / len(window)
        assert rec["b"] == sum(values(s)[1] for s in window) / len(window)
        assert rec["per_s"] > 0
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == [
        "step_00000004", "step_00000008", "step_00000010"]
    extra = torch.load(tmp_path / "run/checkpoints/step_00000008/state.pt", weights_only=True)["extra"]
    assert extra["app_key"] == 8 and {"probes", "remedies", "log_sums", "log_steps"} <= extra.keys()
    assert extra["log_steps"] == 2  # steps 7 and 8 of the window that closes at 9
    assert extra["log_sums"].tolist() == [sum(values(s)[i] for s in (6, 7)) for i in (0, 1)]


def test_a_window_carried_across_a_checkpoint_logs_what_an_uninterrupted_run_logs(tmp_path):
    cfg = LoopConfig(log_every=5, checkpoint_every=3, progress=False, tracker="none", cpu=True)
    run_loop(tmp_path / "whole", 10, cfg)
    run_loop(tmp_path / "killed", 10, cfg, stop_after=4)  # checkpoint at 3 holds 3 steps of the window
    assert not (tmp_path / "killed" / "metrics.jsonl").exists()
    state = torch.load(tmp_path / "killed/checkpoints/step_00000003/state.pt", weights_only=True)
    assert state["extra"]["log_steps"] == 3
    run_loop(tmp_path / "killed", 10, cfg)  # resumes at 3, the window's first 3 steps restored
    strip = lambda recs: [{k: v for k, v in r.items() if k not in ("time", "per_s")} for r in recs]  # noqa: E731
    assert strip(records(tmp_path / "killed")) == strip(records(tmp_path / "whole"))
    assert records(tmp_path / "whole")[0]["a"] == sum(values(s)[0] for s in range(5)) / 5


def test_a_non_finite_logged_mean_stops_at_the_log_step(tmp_path):
    cfg = LoopConfig(log_every=3, checkpoint_every=4, check_every=50, progress=False, tracker="none", cpu=True)
    with pytest.raises(UserError, match="at or before step 6; the last good checkpoint is .*step_00000004"):
        run_loop(tmp_path / "run", 10, cfg, nan_at=4)  # step 4 is the 5th; the next read is at 6
    recs = records(tmp_path / "run")
    assert [r["step"] for r in recs] == [3, 6] and math.isnan(recs[-1]["a"])  # written, then stopped


def test_the_divergence_check_runs_every_check_every_steps(tmp_path):
    cfg = LoopConfig(log_every=3, checkpoint_every=4, check_every=5, progress=False, tracker="none", cpu=True)
    with pytest.raises(UserError, match="at or before step 5;"):
        run_loop(tmp_path / "run", 10, cfg, nan_at=4)
    assert [r["step"] for r in records(tmp_path / "run")] == [3]


def test_the_window_reads_the_translation_trainers_older_checkpoint_format():
    window = LogWindow(("loss",), SimpleNamespace(device=torch.device("cpu"), num_processes=1))
    window.load_state_dict({"epoch": 0, "log_loss_sum": 2.5, "log_steps": 2})
    window.add(torch.tensor(0.5))
    window.steps += 1
    assert window.read() == {"loss": 1.0}
    empty = LogWindow(("loss",), SimpleNamespace(device=torch.device("cpu"), num_processes=1))
    empty.load_state_dict({"epoch": 0})  # a checkpoint without a window: nothing carried
    assert empty.steps == 0 and empty.sums.tolist() == [0.0]


GAN_TRAIN_KEYS = {"batch_size", "ema_decay", "augment", "mixed_precision", "cpu", "log_every", "sample_every",
                  "checkpoint_every", "keep_checkpoints", "check_every", "fid_every", "fid_samples", "tracker",
                  "progress"}
TRANSLATION_TRAIN_KEYS = {"max_tokens", "mixed_precision", "cpu", "log_every", "eval_every", "eval_sentences",
                          "checkpoint_every", "keep_checkpoints", "check_every", "progress", "tracker"}


@pytest.mark.parametrize("schema, keys", [(GanConfig, GAN_TRAIN_KEYS), (TranslationConfig, TRANSLATION_TRAIN_KEYS)])
def test_the_train_section_keeps_its_keys_and_old_run_directories_resume(tmp_path, schema, keys):
    new = config_to_dict(schema())
    assert set(new["train"]) == keys  # the keys a run directory's config.yaml holds
    # a config.yaml written before LoopConfig listed the train keys in another order: still the same run
    old = {**new, "train": {k: new["train"][k] for k in sorted(new["train"])}}
    assert list(old["train"]) != list(new["train"])
    RunDir.create_or_resume(tmp_path / "run", "looptest", old)
    RunDir.create_or_resume(tmp_path / "run", "looptest", new)
    assert (tmp_path / "run" / "config.yaml").read_text() == dump_yaml(old)  # nothing changed: not rewritten


@pytest.mark.parametrize("schema", [GanConfig, TranslationConfig])
def test_the_shared_loop_keys_are_validated_under_the_train_section(schema):
    with pytest.raises(ConfigError, match=r"config key 'train.log_every': must be >= 1 \(got 0\)"):
        config_from_dict(schema, {"train": {"log_every": 0}})
    cfg = config_from_dict(schema, {"train": {"check_every": 7, "progress": False}})
    assert isinstance(cfg.train, LoopConfig) and (cfg.train.check_every, cfg.train.progress) == (7, False)
