"""Two CPU processes under ``accelerate launch`` (gloo, one thread each): one set of logs and
checkpoints, the same losses as one process (the global batch is split, not duplicated), and a
resume on one process from the two-process checkpoint."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from apps.translation import train as train_cmd
from test_translation_cli import tiny_args, write_multi30k

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def losses(run: Path) -> dict[int, float]:
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in recs if "loss" in r}


def test_two_process_cpu_run_logs_once_and_matches_one_process(tmp_path):
    data = write_multi30k(tmp_path / "data")
    run2, run1 = tmp_path / "two", tmp_path / "one"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(free_port()), "-m", "apps.translation.train",
           *tiny_args(data, run2, steps=20)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 process(es)" in proc.stdout
    recs = [json.loads(x) for x in (run2 / "metrics.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in recs if "loss" in r]
    assert train_steps == [10, 20]  # written once, not once per process
    assert [r["step"] for r in recs if "valid_bleu" in r] == [20]
    ckpt = run2 / "checkpoints" / "step_00000020"
    assert json.loads((ckpt / "meta.json").read_text())["world_size"] == 2
    assert sorted(p.name for p in ckpt.glob("rng_*.pt")) == ["rng_0.pt", "rng_1.pt"]

    train_cmd.main(tiny_args(data, run1, steps=20))
    two, one = losses(run2), losses(run1)
    assert two.keys() == one.keys()
    for step in one:  # same global batches and normalisation: equal up to float reduction order
        assert two[step] == pytest.approx(one[step], rel=1e-4)

    train_cmd.main(tiny_args(data, run2, steps=30))  # the 2-process run resumes on one process
    assert sorted(losses(run2)) == [10, 20, 30]
