"""One writer per run directory (common.runlock): a second training or evaluation of a run is
refused with one line naming the holder; a lock whose holder is gone — a dead pid here, a stale
heartbeat from another machine — is taken over with one line; nothing is left behind by a clean
run or by a failed in-process one; readers (sample) need no lock; ``accelerate launch`` is one holder."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from apps.gan import evaluate as gan_evaluate
from apps.gan import sample as gan_sample
from apps.gan import train as gan_train
from apps.translation import evaluate as tr_evaluate
from common import runlock
from common.errors import UserError, cli
from common.rundir import RunDir
from common.runlock import LOCK_NAME
from test_gan_cli import free_port
from test_gan_train import records, tiny_args

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
CFG = {"out": "x", "seed": 0, "steps": 3}
# a training that runs until killed: no checkpoint, no grid, a log record only at its end
LONG = ("train.checkpoint_every=1000000", "train.sample_every=0", "train.log_every=1000000", "probes.every=1000")


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def make_run(path: Path, app: str = "gan") -> Path:
    RunDir.create_or_resume(path, app, {**CFG, "out": str(path)}).close()
    assert not (path / LOCK_NAME).exists()
    return path


def plant(run: Path, age_s: float = 0.0, **fields) -> Path:
    """A lock file written by hand (by default: another machine's), its heartbeat ``age_s`` old."""
    lock = run / LOCK_NAME
    info = {"host": "node-17.elsewhere", "pid": 4242, "start": "99", "scope": "other-boot/pid:[1]",
            "what": "gan training", "since": time.time() - age_s - 60, "token": "feed", **fields}
    lock.write_text(json.dumps(info) + "\n")
    t = time.time() - age_s
    os.utime(lock, (t, t))
    return lock


def here(pid: int, start: str | None) -> dict:
    """Lock fields of process ``pid`` on this machine."""
    return {"host": socket.gethostname(), "pid": pid, "start": start, "scope": runlock.machine_scope()}


def holder(run: Path) -> dict:
    return json.loads((run / LOCK_NAME).read_text())


def wait_for(check, timeout: float, what: str) -> None:
    end = time.time() + timeout
    while not check():
        assert time.time() < end, f"timed out waiting for {what}"
        time.sleep(0.1)


def one_line_exit_2(main, argv, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        cli(main, argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err.strip()


# -- real processes ---------------------------------------------------------------------------------


def test_second_trainer_is_refused_naming_the_holder_and_a_killed_holder_is_taken_over(tmp_path):
    run = tmp_path / "run"
    log = open(tmp_path / "first.log", "w")
    first = subprocess.Popen([sys.executable, "-m", "apps.gan.train", *tiny_args(run, 10_000_000, *LONG)],
                             cwd=ROOT, env=ENV, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: (run / LOCK_NAME).is_file() and (run / "leakylab.json").is_file() or first.poll() is not None,
                 180, "the first training to lock its run")
        assert first.poll() is None, (tmp_path / "first.log").read_text()
        assert holder(run)["pid"] == first.pid
        config, marker = (run / "config.yaml").read_bytes(), (run / "leakylab.json").read_bytes()

        second = subprocess.run([sys.executable, "-m", "apps.gan.train", *tiny_args(run, 4, *LONG)], cwd=ROOT,
                                env=ENV, capture_output=True, text=True, timeout=180)
        assert second.returncode == 2, second.stderr
        err = second.stderr.strip()
        assert "\n" not in err and "Traceback" not in err, err
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder(run)["since"]))
        assert err.startswith(f"error: '{run}' is in use by gan training (host {socket.gethostname()}, "
                              f"pid {first.pid}, since {since}); wait for it to finish or stop it"), err
        assert "heartbeat" not in err  # same machine: judged by its pid, not a heartbeat
        assert first.poll() is None and holder(run)["pid"] == first.pid
        assert (run / "config.yaml").read_bytes() == config and (run / "leakylab.json").read_bytes() == marker
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
        log.close()

    assert (run / LOCK_NAME).is_file()  # a SIGKILL cleans nothing up
    third = subprocess.run([sys.executable, "-m", "apps.gan.train", *tiny_args(run, 4, *LONG)], cwd=ROOT,
                           env=ENV, capture_output=True, text=True, timeout=180)
    assert third.returncode == 0, third.stderr
    assert (f"note: taking over the lock of '{run}' from gan training (host {socket.gethostname()}, "
            f"pid {first.pid}") in third.stderr
    assert f"process {first.pid} no longer exists" in third.stderr
    assert [r["step"] for r in records(run)] == [4]
    assert (run / "checkpoints" / "step_00000004" / "meta.json").is_file()
    assert not (run / LOCK_NAME).exists()  # the clean run left none


def test_two_process_launch_is_one_holder_and_is_refused_as_one(tmp_path):
    run = tmp_path / "run"
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port"]
    proc = subprocess.run([*launch, str(free_port()), "-m", "apps.gan.train", *tiny_args(run, 2)], cwd=ROOT,
                          env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "taking over" not in proc.stderr and not (run / LOCK_NAME).exists()

    plant(run)  # a training of it on another machine
    before = files(run)
    proc = subprocess.run([*launch, str(free_port()), "-m", "apps.gan.train", *tiny_args(run, 4)], cwd=ROOT,
                          env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    refusals = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(refusals) == 1 and "in use by gan training (host node-17.elsewhere, pid 4242" in refusals[0]
    assert files(run) == before


def test_concurrent_takeovers_of_one_stale_lock_have_one_winner(tmp_path):
    run = make_run(tmp_path / "run")
    plant(run, age_s=3600)
    go = tmp_path / "go"
    script = (f"import os, sys, time\nfrom common import runlock\nfrom common.errors import UserError\n"
              f"open(os.path.join({str(tmp_path)!r}, 'ready-%d' % os.getpid()), 'w').close()\n"
              f"while not os.path.exists({str(go)!r}): time.sleep(0.01)\n"
              f"try:\n    lock = runlock.acquire({str(run)!r}, 'racer')\nexcept UserError:\n    print('refused')\n"
              f"else:\n    print('got'); sys.stdout.flush(); time.sleep(3); lock.release()\n")
    racers = [subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env={**ENV, "PYTHONPATH": str(ROOT)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    wait_for(lambda: len(list(tmp_path.glob("ready-*"))) == 4, 60, "the racers to start")
    go.write_text("")
    outcomes = [r.communicate(timeout=60)[0].strip() for r in racers]
    assert sorted(outcomes) == ["got", "refused", "refused", "refused"], outcomes
    assert not (run / LOCK_NAME).exists()
    assert [p.name for p in run.iterdir() if p.name.startswith(".")] == []  # no asides or clock probes left


# -- judging a lock found in place --------------------------------------------------------------------


def test_fresh_lock_of_another_machine_is_refused_and_nothing_changes(tmp_path):
    run = make_run(tmp_path / "run")
    lock = plant(run, age_s=30)
    before = files(run)
    with pytest.raises(UserError) as exc:
        RunDir.create_or_resume(run, "gan", {**CFG, "out": str(run)})
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder(run)["since"]))
    assert str(exc.value) == (
        f"'{run}' is in use by gan training (host node-17.elsewhere, pid 4242, since {since}); wait for it to "
        f"finish or stop it (one writer per run directory); its last heartbeat was 30 s ago, and if that process "
        f"is gone its lock is taken over after 10 min without one (LEAKYLAB_LOCK_STALE_S), or delete '{lock}'")
    assert files(run) == before


def test_stale_lock_of_another_machine_is_taken_over_with_a_line(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    plant(run, age_s=20 * 60)
    with RunDir.create_or_resume(run, "gan", {**CFG, "out": str(run)}):
        assert holder(run)["pid"] == os.getpid() and holder(run)["what"] == "gan training"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        f"note: taking over the lock of '{run}' from gan training (host node-17.elsewhere, pid 4242"), err
    assert "its heartbeat is 20 min old (stale after 10 min, LEAKYLAB_LOCK_STALE_S)" in err
    assert not (run / LOCK_NAME).exists()


def test_stale_timeout_comes_from_the_environment(tmp_path, monkeypatch, capsys):
    run = make_run(tmp_path / "run")
    plant(run, age_s=5)
    with pytest.raises(UserError, match="in use by gan training"):
        RunDir.create_or_resume(run, "gan", {**CFG, "out": str(run)})
    monkeypatch.setenv("LEAKYLAB_LOCK_STALE_S", "2")
    RunDir.create_or_resume(run, "gan", {**CFG, "out": str(run)}).close()
    assert "its heartbeat is 5 s old (stale after 2 s" in capsys.readouterr().err
    monkeypatch.setenv("LEAKYLAB_LOCK_STALE_S", "soon")
    with pytest.raises(UserError, match="LEAKYLAB_LOCK_STALE_S='soon' must be a positive number of seconds"):
        RunDir.create_or_resume(run, "gan", {**CFG, "out": str(run)})


def test_lock_of_a_dead_or_replaced_process_here_is_taken_over_at_once(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    plant(run, **here(gone.pid, None))  # fresh heartbeat: on this machine only the pid counts
    RunDir.create_or_resume(run, "gan", {**CFG, "out": str(run)}).close()
    assert f"process {gone.pid} no longer exists" in capsys.readouterr().err

    if runlock._proc_stat(os.getpid()) is None:
        pytest.skip("no /proc: process start times cannot be checked here")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = runlock._proc_stat(sleeper.pid)[1]
        plant(run, **here(sleeper.pid, str(int(start) + 1)))  # the pid, but a process started at another time
        RunDir.create_or_resume(run, "gan", {**CFG, "out": str(run)}).close()
        assert f"pid {sleeper.pid} now belongs to another process" in capsys.readouterr().err
        plant(run, **here(sleeper.pid, start))  # the very process: alive
        with pytest.raises(UserError, match=f"pid {sleeper.pid}, since .*\\); wait for it to finish or stop it"):
            RunDir.create_or_resume(run, "gan", {**CFG, "out": str(run)})
    finally:
        sleeper.kill()
        sleeper.wait()


def test_lock_of_a_zombie_is_taken_over(tmp_path, capsys):
    if runlock._proc_stat(os.getpid()) is None:
        pytest.skip("no /proc")
    run = make_run(tmp_path / "run")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    start = runlock._proc_stat(child.pid)[1]
    wait_for(lambda: runlock._proc_stat(child.pid)[0] == "Z", 30, "the child to exit unreaped")
    try:
        plant(run, **here(child.pid, start))
        RunDir.create_or_resume(run, "gan", {**CFG, "out": str(run)}).close()
        assert f"process {child.pid} has exited" in capsys.readouterr().err
    finally:
        child.wait()


def test_unreadable_lock_is_judged_by_its_age(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    lock = run / LOCK_NAME
    lock.write_bytes(b"")  # a creator that died before writing it
    with pytest.raises(UserError, match="in use by a process whose lock file .* cannot be read"):
        RunDir.create_or_resume(run, "gan", {**CFG, "out": str(run)})
    t = time.time() - 3600
    os.utime(lock, (t, t))
    RunDir.create_or_resume(run, "gan", {**CFG, "out": str(run)}).close()
    assert "the lock file is unreadable and 60 min old" in capsys.readouterr().err


# -- holding and letting go ---------------------------------------------------------------------------


def test_heartbeat_refreshes_the_lock_and_notices_losing_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LEAKYLAB_LOCK_STALE_S", "2")  # a beat every 0.2 s
    run = make_run(tmp_path / "run")
    with RunDir.create_or_resume(run, "gan", {**CFG, "out": str(run)}):
        lock = run / LOCK_NAME
        t = time.time() - 100
        os.utime(lock, (t, t))
        wait_for(lambda: time.time() - lock.stat().st_mtime < 5, 5, "a heartbeat")
        lock.unlink()  # someone deleted it by hand
        wait_for(lambda: "warning: the lock of" in capsys.readouterr().err, 5, "the heartbeat's warning")


def test_one_process_may_lock_its_run_twice_and_the_last_release_removes_it(tmp_path):
    run = make_run(tmp_path / "run")
    a = RunDir.create_or_resume(run, "gan", {**CFG, "out": str(run)})
    b = RunDir.open(run, "gan", write=True)
    first = holder(run)
    a.close()
    a.close()  # a second close does nothing
    assert holder(run) == first
    b.close()
    assert not (run / LOCK_NAME).exists()
    RunDir.create_or_resume(run, "gan", {**CFG, "out": str(run)})  # dropped unreferenced: released too
    assert not (run / LOCK_NAME).exists()


def test_refused_or_failed_commands_leave_no_lock(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    gan_train.main(tiny_args(run, 2))
    assert not (run / LOCK_NAME).exists()
    line = one_line_exit_2(gan_train.main, tiny_args(run, 2, "model.ngf=8"), capsys)
    assert "was trained with another config" in line and not (run / LOCK_NAME).exists()

    def broken(self) -> None:
        raise RuntimeError("a bug in the middle of training")

    monkeypatch.setattr("common.loop.TrainLoop.begin", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        gan_train.main(tiny_args(run, 4))
    assert not (run / LOCK_NAME).exists()


def test_evaluation_needs_the_lock_and_sampling_does_not(tmp_path, capsys):
    run = tmp_path / "gan"
    gan_train.main(tiny_args(run, 3))
    plant(run)
    before = files(run)
    line = one_line_exit_2(gan_evaluate.main, ["--run", str(run)], capsys)
    assert f"'{run}' is in use by gan training (host node-17.elsewhere, pid 4242" in line
    assert files(run) == before
    cli_ok(gan_sample.main, ["--run", str(run), "--num", "4", "--out", str(tmp_path / "grid.png")])
    assert (tmp_path / "grid.png").is_file() and holder(run)["pid"] == 4242

    tr = make_run(tmp_path / "tr", "translation")
    plant(tr, what="translation training")
    line = one_line_exit_2(tr_evaluate.main, ["--run", str(tr)], capsys)
    assert f"'{tr}' is in use by translation training (host node-17.elsewhere" in line


def cli_ok(main, argv) -> None:
    with pytest.raises(SystemExit) as exc:
        cli(main, argv)
    assert exc.value.code == 0
