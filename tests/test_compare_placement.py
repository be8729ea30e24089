"""GPU-aware scheduling of the comparison's cells, with fake device counts (no GPU needed): which
GPU and slot a cell gets, packing several cells on a GPU, a finished cell's slot given back, the
cap on cells at a time, the dry run's listing, and CPU-only machines left exactly as they were."""

from __future__ import annotations

import json
import stat
import sys
from collections import namedtuple
from pathlib import Path

import pytest

import apps.compare.main as compare_main
from apps.compare.config import CompareConfig
from apps.compare.executors import LocalExecutor
from apps.compare.matrix import build_matrix
from apps.compare.placement import (SlotPool, cells_at_a_time, cluster_capacity, device_ids, next_startable,
                                    primed_at_start,
                                    plan)
from apps.compare.runner import run_matrix
from common.config import config_from_dict

# Stands in for the interpreter: a "train" that sleeps a little and an "evaluate" that writes
# eval.json at the final step; each process logs when it ran and which GPU and threads it saw.
FAKE_PYTHON = r'''#!{python}
import json, os, sys, time
from pathlib import Path
mod, rest = sys.argv[2], sys.argv[3:]
def event(what):
    with open(os.environ["FAKE_EVENTS"], "a") as fh:
        fh.write(json.dumps({{"t": time.time(), "what": what, "mod": mod, "args": rest,
                             "gpu": os.environ.get("CUDA_VISIBLE_DEVICES"),
                             "threads": os.environ["OMP_NUM_THREADS"]}}) + "\n")
event("start")
if mod.endswith(".train"):
    kv = dict(a.split("=", 1) for a in rest[2:])
    run = Path(kv["out"])
    run.mkdir(parents=True, exist_ok=True)
    time.sleep(0.2)
    (run / "trained").write_text(kv["steps"])
else:
    run = Path(rest[rest.index("--run") + 1])
    step = int((run / "trained").read_text())
    (run / "eval.json").write_text(json.dumps({{"app": "gan", "step": step, "fid": 10.0}}))
event("end")
'''


@pytest.fixture()
def fake_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    exe = tmp_path / "fakepython"
    exe.write_text(FAKE_PYTHON.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("FAKE_EVENTS", str(tmp_path / "events.jsonl"))
    monkeypatch.setenv("LEAKYLAB_COMPARE_PYTHON", str(exe))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.chdir(tmp_path)
    return exe


def _cfg(tmp: Path, seeds: list[int], **extra: object) -> CompareConfig:
    return config_from_dict(CompareConfig, {
        "out": str(tmp / "runs"), "report": str(tmp / "report"), "seeds": seeds, "jobs": 0,
        "studies": {"g": {"app": "gan", "config": "gan.yaml", "steps": 5, "seconds_per_cell": 3,
                          "variants": {"relu": {"model.g_act": "relu"}, "leaky": {"model.g_act": "leaky_relu"}}}},
        **extra,
    })


def _cells_seen(tmp: Path) -> dict[str, dict]:
    """Per cell (its run directory): first start, last end, and the GPU and threads its processes saw."""
    cells: dict[str, dict] = {}
    for line in (tmp / "events.jsonl").read_text().splitlines():
        e = json.loads(line)
        run = next(a.split("=", 1)[1] for a in e["args"] if a.startswith("out=")) if e["mod"].endswith(".train") \
            else e["args"][e["args"].index("--run") + 1]
        c = cells.setdefault(run, {"start": e["t"], "end": e["t"], "gpus": set(), "threads": set()})
        c["start"], c["end"] = min(c["start"], e["t"]), max(c["end"], e["t"])
        c["gpus"].add(e["gpu"])
        c["threads"].add(e["threads"])
    return cells


def _max_overlap(cells: list[dict]) -> int:
    points = sorted([(c["start"], 1) for c in cells] + [(c["end"], -1) for c in cells], key=lambda p: (p[0], p[1]))
    now = most = 0
    for _, step in points:
        now += step
        most = max(most, now)
    return most


def test_slots_spread_then_pack_and_are_given_back() -> None:
    pool = SlotPool(2, cells_per_gpu=2, threads=4, devices=["2", "3"])
    assert pool.capacity == 4
    got = [pool.take() for _ in range(4)]
    # spread over the GPUs first, then a second cell on each
    assert [(s.gpu, s.index) for s in got] == [(0, 1), (1, 1), (0, 2), (1, 2)]
    assert got[3].describe() == "GPU 1 (slot 2/2), 4 threads"
    # the child sees the parent's own name of that GPU
    assert got[0].env() == {"CUDA_VISIBLE_DEVICES": "2"} and got[3].env() == {"CUDA_VISIBLE_DEVICES": "3"}
    with pytest.raises(RuntimeError, match="all 4 GPU slots are taken"):
        pool.take()
    pool.give_back(got[2])  # GPU 0's second cell ends: exactly that slot is free again
    assert pool.in_use == 3
    again = pool.take()
    assert (again.gpu, again.index, again.device) == (0, 2, "2")
    pool.give_back(got[1])
    with pytest.raises(RuntimeError, match="was not taken"):
        pool.give_back(got[1])
    # one GPU, three cells on it
    one = SlotPool(1, cells_per_gpu=3)
    assert [s.describe() for s in (one.take(), one.take(), one.take())] == [
        "GPU 0 (slot 1/3), 1 thread", "GPU 0 (slot 2/3), 1 thread", "GPU 0 (slot 3/3), 1 thread"]
    # no GPU: the CPU, and nothing in the environment
    cpu = SlotPool(0, threads=2).take()
    assert cpu.gpu is None and cpu.env() == {} and cpu.describe() == "CPU, 2 threads"


def test_device_names_follow_the_parents_restriction() -> None:
    assert device_ids(2, None) == ["0", "1"]
    assert device_ids(2, "5,7") == ["5", "7"]
    assert device_ids(1, "GPU-aa, GPU-bb") == ["GPU-aa"]
    assert device_ids(3, "4") == ["0", "1", "2"]  # a count the variable cannot name: plain indices


def test_cells_at_a_time_is_capped_by_gpu_slots_and_cores() -> None:
    # CPU only: the runner's rule as before — jobs, or one cell per `threads` cores; jobs is not capped
    assert cells_at_a_time(0, 16, 4, 0, 1) == (4, "")
    assert cells_at_a_time(8, 2, 1, 0, 1) == (8, "")
    # GPUs: the slots, and the cores
    assert cells_at_a_time(0, 16, 1, 2, 2) == (4, "")
    assert cells_at_a_time(3, 16, 1, 2, 2) == (3, "")
    assert cells_at_a_time(8, 16, 1, 2, 2) == (4, "jobs=8 lowered to 4 (2 GPUs × 2 cells each)")
    assert cells_at_a_time(0, 8, 4, 2, 2) == (2, "")
    assert cells_at_a_time(3, 8, 4, 2, 2) == (2, "jobs=3 lowered to 2 (8 cores / 4 threads per cell)")
    assert cells_at_a_time(0, 2, 4, 1, 1) == (1, "")  # fewer cores than threads: still one cell
    # a cluster: per node, what its cores and GPU slots allow
    assert cluster_capacity([(16, 2), (8, 0)], threads=4, cells_per_gpu=2) == 4
    assert cluster_capacity([(16, 0), (3, 0)], threads=2, cells_per_gpu=2) == 9
    assert cluster_capacity([(16, 1)], threads=1, cells_per_gpu=3) == 3


def test_plan_keeps_the_first_cell_of_a_study_alone_and_reuses_freed_slots() -> None:
    C = namedtuple("C", "key study")
    cells = [C("a0", "a"), C("b0", "b"), C("a1", "a"), C("b1", "b"), C("a2", "a")]
    seconds = {"a": 10.0, "b": 4.0}
    got = plan(cells, lambda c: seconds[c.study], lambda c: c.study, SlotPool(2, cells_per_gpu=1), jobs=2)
    assert [(c.key, s.gpu) for c, s in got] == [
        ("a0", 0), ("b0", 1),  # one cell per study first (a1 waits for a0: caches are built once)
        ("b1", 1),             # b0 ends at t=4 on GPU 1; a is not primed yet, so b1 takes the slot
        ("a1", 0),             # b1 ends at t=8, but a1 waits for a0 (t=10); then both GPUs are free:
        ("a2", 1)]             # the lower-numbered first
    assert next_startable(["a1", "b1"], {"a"}, set(), lambda k: k[0]) == "b1"
    assert next_startable(["a1"], {"a"}, {"a"}, lambda k: k[0]) == "a1"


def test_only_apps_with_a_shared_disk_cache_hold_back_their_first_cell() -> None:
    from apps import load_apps
    from common.appspec import get_app

    load_apps()

    assert get_app("gan").shares_disk_cache and not get_app("translation").shares_disk_cache
    C = namedtuple("C", "key study app done")
    cells = [C("g0", "img", "gan", False), C("g1", "img", "gan", False),
             C("t0", "mt", "translation", False), C("t1", "mt", "translation", False),
             C("h0", "img2", "gan", True), C("h1", "img2", "gan", False)]
    primed = primed_at_start(cells, lambda c: c.study, lambda c: c.done, lambda c: get_app(c.app).shares_disk_cache)
    assert primed == {"mt", "img2"}  # translation shares nothing on disk; img2 already has a finished cell
    assert next_startable(["t1"], {"mt"}, primed, lambda k: {"t": "mt", "g": "img"}[k[0]]) == "t1"
    assert next_startable(["g1"], {"img"}, primed, lambda k: {"t": "mt", "g": "img"}[k[0]]) is None


def test_cells_run_on_their_own_gpu_and_give_the_slot_back(tmp_path: Path, fake_python: Path) -> None:
    cfg = _cfg(tmp_path, [0, 1, 2])
    cells = build_matrix(cfg)
    pool = SlotPool(2, cells_per_gpu=1, threads=1, devices=["4", "6"])
    said: list[str] = []
    out = run_matrix(cells, Path(cfg.out), {"g": 1.0}, jobs=4, say=said.append,
                     executor=LocalExecutor(4, 1, str(fake_python), pool))
    assert len(out) == 6 and all(o.ok for o in out) and pool.in_use == 0
    assert "2 in parallel" in said[0] and "on 2 GPU(s) × 1 cell(s) per GPU" in said[0]  # jobs=4 capped by the slots
    starts = [s for s in said if s.startswith("[start]")]
    assert len(starts) == 6 and all(" → GPU " in s and "(slot 1/1), 1 thread" in s for s in starts)
    seen = _cells_seen(tmp_path)
    assert len(seen) == 6
    for c in seen.values():
        assert len(c["gpus"]) == 1 and c["gpus"] <= {"4", "6"} and c["threads"] == {"1"}  # train and evaluate alike
    # never two cells on one GPU at once, and both GPUs used
    for gpu in ("4", "6"):
        on = [c for c in seen.values() if c["gpus"] == {gpu}]
        assert on and _max_overlap(on) == 1, gpu
    assert _max_overlap(list(seen.values())) == 2
    # the cell's record says where it ran and how to run it there by hand
    book = json.loads((cells[0].dir / "cell.json").read_text())
    gpu = seen[str(cells[0].run_dir)]["gpus"].pop()
    assert book["commands"][0].startswith(f"CUDA_VISIBLE_DEVICES={gpu} OMP_NUM_THREADS=1 python -m apps.gan.train")
    assert book["placement"].startswith(f"GPU {['4', '6'].index(gpu)} (slot 1/1)")


def test_cells_pack_onto_one_gpu(tmp_path: Path, fake_python: Path) -> None:
    cfg = _cfg(tmp_path, [0, 1, 2])
    cells = build_matrix(cfg)
    pool = SlotPool(1, cells_per_gpu=2, threads=1)
    said: list[str] = []
    out = run_matrix(cells, Path(cfg.out), {"g": 1.0}, jobs=2, say=said.append,
                     executor=LocalExecutor(2, 1, str(fake_python), pool))
    assert all(o.ok for o in out) and pool.in_use == 0
    seen = _cells_seen(tmp_path)
    assert all(c["gpus"] == {"0"} for c in seen.values())
    assert _max_overlap(list(seen.values())) == 2
    assert {s.split(" → ")[1].split(")")[0] + ")" for s in said if s.startswith("[start]")} == {
        "GPU 0 (slot 1/2)", "GPU 0 (slot 2/2)"}


def _preset(tmp: Path, **extra: object) -> Path:
    (tmp / "gan.yaml").write_text("steps: 1\n")
    preset = tmp / "p.yaml"
    preset.write_text(json.dumps({
        "out": str(tmp / "runs"), "report": str(tmp / "report"), "findings": str(tmp / "findings"),
        "seeds": [0, 1], "threads": 4, **extra,
        "studies": {"g": {"app": "gan", "config": "gan.yaml", "steps": 5, "seconds_per_cell": 3,
                          "variants": {"relu": {"model.g_act": "relu"}, "leaky": {"model.g_act": "leaky_relu"}}}},
    }))
    return preset


def test_dry_run_lists_where_each_cell_goes(tmp_path: Path, fake_python: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(compare_main, "detect_gpus", lambda: 2)
    monkeypatch.setattr(compare_main.os, "cpu_count", lambda: 16)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,3")
    preset = _preset(tmp_path)
    assert compare_main.main(["--config", str(preset), "--dry-run", "cells_per_gpu=2", "jobs=9"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "note: jobs=9 lowered to 4 (2 GPUs × 2 cells each)"
    assert lines[1] == "placement: 2 GPUs × 2 cells each, 4 threads per cell on 16 cores → 4 cells at a time"
    heads = [ln for ln in lines if ln.startswith("# g/")]
    assert heads == ["# g/relu/seed0 (to run) → GPU 0 (slot 1/2), 4 threads",
                     "# g/leaky/seed0 (to run) → GPU 0 (slot 1/2), 4 threads",  # waits for relu/seed0 (same study)
                     "# g/relu/seed1 (to run) → GPU 1 (slot 1/2), 4 threads",
                     "# g/leaky/seed1 (to run) → GPU 0 (slot 2/2), 4 threads"]
    cmds = [ln for ln in lines if not ln.startswith("#") and ln not in lines[:2]]
    assert len(cmds) == 8 and cmds[0].startswith("CUDA_VISIBLE_DEVICES=1 OMP_NUM_THREADS=4 python -m apps.gan.train")
    assert cmds[4].startswith("CUDA_VISIBLE_DEVICES=3 OMP_NUM_THREADS=4 ")
    assert not (tmp_path / "runs").exists()  # a dry run runs nothing


def test_cpu_only_is_unchanged(tmp_path: Path, fake_python: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(compare_main, "detect_gpus", lambda: 0)
    monkeypatch.setattr(compare_main.os, "cpu_count", lambda: 2)
    preset = _preset(tmp_path)
    cfg = compare_main.load_preset(str(preset), ["jobs=3"])
    cells = build_matrix(cfg)
    assert compare_main.main(["--config", str(preset), "--dry-run", "cells_per_gpu=2", "jobs=3"]) == 0
    expected = []
    for c in cells:
        expected += [f"# {c.key} (to run)", *c.commands(4)]
    assert capsys.readouterr().out.splitlines() == expected  # no placement, no GPU, jobs=3 not lowered

    assert compare_main.main(["--config", str(preset), "threads=1", "jobs=3"]) == 0
    out = capsys.readouterr().out
    assert "to run, 3 in parallel, 1 thread(s) each\n" in out
    assert "GPU" not in out and "note:" not in out
    seen = _cells_seen(tmp_path)
    assert len(seen) == 4 and all(c["gpus"] == {None} for c in seen.values())
    book = json.loads((cells[0].dir / "cell.json").read_text())
    assert "placement" not in book and book["commands"][0].startswith("OMP_NUM_THREADS=1 python -m apps.gan.train")
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["environment"]["parallel_cells"] == 3 and "cells_per_gpu" not in summary["environment"]

