"""The comparison on a Ray cluster (``executor: ray``): a tiny real matrix of both apps runs as Ray
tasks on a local cluster the runner starts, the report is the local runner's, a re-run resumes an
unfinished cell and skips the finished ones; a node that cannot see the run directories is named
in a one-line refusal before it runs anything; without Ray the user is told how to install it."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import sys
from pathlib import Path

import pytest

from apps.compare.config import load_preset
from apps.compare.main import main
from apps.compare.matrix import build_matrix
from apps.compare.ray_exec import MARKER, check_node, write_marker
from common.config import ConfigError
from common.errors import UserError
from test_compare_end_to_end import ROOT, TINY_GAN, TINY_MT

ON_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")

HAVE_RAY = importlib.util.find_spec("ray") is not None

# The [dev] extra installs Ray, so CI must run these tests, not skip them.
needs_ray = pytest.mark.skipif(not HAVE_RAY and not ON_CI, reason="Ray is not installed (pip install '.[cluster]')")


def _preset(tmp: Path) -> Path:
    """Both real apps, tiny: the GAN with two variants (a comparison to report), translation with
    its baseline alone — three cells of a few CPU seconds each."""
    preset = tmp / "both.yaml"
    preset.write_text(json.dumps({
        "title": "both apps on Ray", "seeds": [0], "jobs": 2, "examples": 2, "executor": "ray",
        "out": str(tmp / "runs"), "report": str(tmp / "rep"), "findings": str(tmp / "findings"),
        "studies": {
            "img": {"app": "gan", "config": str(ROOT / "configs/gan/digits.yaml"), "steps": 3,
                    "seconds_per_cell": 5, "overrides": TINY_GAN,
                    "variants": {"relu": {"model.g_act": "relu", "model.g_act_params": {}},
                                 "leaky": {"model.g_act": "leaky_relu", "model.g_act_params": {"alpha": 0.2}}}},
            "mt": {"app": "translation", "config": str(ROOT / "configs/translation/embedded.yaml"), "steps": 3,
                   "seconds_per_cell": 5, "overrides": TINY_MT, "eval_args": ["--num", 4, "--beam", 1],
                   "variants": {"relu": {"model.activation": "relu", "model.act_params": {}}}},
        },
    }))
    return preset


@pytest.fixture()
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # anything a cell writes outside its run directory lands here
    monkeypatch.setenv("LEAKYLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LEAKYLAB_COMPARE_PYTHON", raising=False)  # the real apps, with this interpreter
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    return tmp_path


@pytest.mark.slow
@needs_ray
def test_both_real_apps_run_as_ray_tasks_then_resume_and_skip(in_tmp: Path, capsys: pytest.CaptureFixture) -> None:
    import ray

    tmp = in_tmp
    preset = _preset(tmp)
    assert main(["--config", str(preset)]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert not ray.is_initialized()  # the local cluster the runner started is gone again
    assert "3 to run, as tasks on a local Ray cluster, 1 CPU(s) each" in out
    assert "ray: 1 node(s)" in out and "each task num_cpus=1, num_gpus=0" in out
    assert out.count("[start] ") == 3 and out.count(" → a Ray task") == 3 and "(3/3 cells complete)" in out
    assert not (tmp / "runs" / MARKER).exists() and not (tmp / "runs" / ".compare.lock").exists()

    summary = json.loads((tmp / "rep" / "summary.json").read_text())
    assert [r["status"] for r in summary["cells"]] == ["complete"] * 3
    assert summary["environment"]["executor"] == "ray (a local cluster)"
    studies = {s["name"]: s for s in summary["studies"]}
    img, mt = studies["img"], studies["mt"]
    assert {(c["variant"], c["metric"]) for c in img["comparisons"]} == {
        ("leaky", k) for k in ("fid", "kid_mean", "dead_frac.G")}
    for v in img["variants"]:  # each variant's value is its own run's eval.json, trained by a Ray task
        ev = json.loads((tmp / "runs" / "img" / v["name"] / "seed0" / "run" / "eval.json").read_text())
        assert ev["step"] == 3 and v["metrics"]["fid"]["mean"] == pytest.approx(ev["fid"])
    assert mt["variants"][0]["metrics"]["bleu"]["n"] == 1
    cells = build_matrix(load_preset(str(preset)))
    for c in cells:
        book = json.loads((c.dir / "cell.json").read_text())
        assert book["returncode"] == 0 and book["placement"].startswith("Ray node ") and book["resumed"] is False
        assert book["train_cpu_s"] > 0  # measured in the task, from the cell's own processes
    assert (tmp / "rep" / "report.md").is_file() and (tmp / "rep" / "report.html").is_file()

    # An unfinished cell (its evaluation lost): the re-run starts Ray again for it alone, and its
    # training resumes on the run directory — finished, so only the evaluation runs again.
    leaky = next(c for c in cells if c.key == "img/leaky/seed0")
    (leaky.run_dir / "eval.json").unlink()
    assert main(["--config", str(preset)]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "2 complete, 1 to run" in out and out.count("[start] ") == 1 and "[start] img/leaky/seed0" in out
    book = json.loads((leaky.dir / "cell.json").read_text())
    assert book["resumed"] is True and json.loads((leaky.run_dir / "eval.json").read_text())["step"] == 3

    # Everything finished: nothing runs, and no cluster is started for nothing.
    assert main(["--config", str(preset)]) == 0
    out = capsys.readouterr().out
    assert "3 complete, 0 to run" in out and "[start]" not in out and "ray:" not in out
    assert "(3/3 cells complete)" in out


@needs_ray
def test_a_node_that_cannot_see_the_run_directory_is_refused(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import apps.compare.ray_exec as ray_exec

    # The driver writes its marker where the nodes' tasks cannot find it: as on a cluster whose
    # `out` is a node-local disk at the same path, the workers see a folder without this run's token.
    def elsewhere(root: Path) -> str:
        write_marker(in_tmp / "driver-only")
        return "token-the-workers-never-see"

    monkeypatch.setattr(ray_exec, "write_marker", elsewhere)
    preset = _preset(in_tmp)
    with pytest.raises(UserError) as err:
        main(["--config", str(preset), "jobs=1"])
    message = str(err.value)
    assert "\n" not in message and f"Ray node {socket.gethostname()} (" in message
    assert "does not see the comparison's run directory" in message and str(in_tmp / "runs") in message
    cells = build_matrix(load_preset(str(preset)))
    assert not any(c.dir.exists() for c in cells)  # refused before any cell ran
    assert not (in_tmp / "runs" / ".compare.lock").exists()  # and the comparison's lock is let go
    import ray

    assert not ray.is_initialized()


def test_node_check_reads_this_runs_marker(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    token = write_marker(root)
    assert check_node(str(root), token, sys.executable, str(tmp_path)) is None
    assert "another run's marker" in check_node(str(root), "other", sys.executable, str(tmp_path))
    assert "no marker" in check_node(str(tmp_path / "elsewhere"), token, sys.executable, str(tmp_path))
    assert "has no interpreter" in check_node(str(root), token, str(tmp_path / "nopython"), str(tmp_path))
    assert "has no folder" in check_node(str(root), token, sys.executable, str(tmp_path / "gone"))
    (root / MARKER).write_text("[not, a, mapping]")
    assert "no marker" in check_node(str(root), token, sys.executable, str(tmp_path))


def test_executor_keys_and_a_missing_ray(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    preset = _preset(in_tmp)
    cfg = load_preset(str(preset), ["ray_address=auto", "cells_per_gpu=3"])
    assert (cfg.executor, cfg.ray_address, cfg.cells_per_gpu) == ("ray", "auto", 3)
    assert load_preset(str(preset), ["executor=local"]).ray_address is None
    with pytest.raises(ConfigError, match="executor.*must be one of local, ray"):
        load_preset(str(preset), ["executor=slurm"])
    with pytest.raises(ConfigError, match="cells_per_gpu"):
        load_preset(str(preset), ["cells_per_gpu=0"])
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    with pytest.raises(UserError, match=r"pip install 'leakylab\[cluster\]'"):
        main(["--config", str(preset)])
    assert not (in_tmp / "runs").exists()


def test_a_comparison_lock_from_another_host_is_not_taken_as_dead(tmp_path: Path) -> None:
    """The run directories may be shared between machines (a Ray cluster): a pid from another host
    says nothing here, so its lock is refused rather than taken over; this host's dead one is taken."""
    from apps.compare.procs import RunLock

    lock = tmp_path / ".compare.lock"
    lock.write_text(json.dumps({"pid": os.getpid() + 1, "host": socket.gethostname() + "-other", "children": []}))
    with pytest.raises(UserError, match=r"started on host .*-other .*delete that file"):
        RunLock(tmp_path).__enter__()
    assert json.loads(lock.read_text())["host"].endswith("-other")  # left as it was
    lock.write_text(json.dumps({"pid": 999999999, "host": socket.gethostname(), "children": []}))
    with RunLock(tmp_path):
        assert json.loads(lock.read_text()) == {"pid": os.getpid(), "host": socket.gethostname(), "children": []}
    assert not lock.exists()
