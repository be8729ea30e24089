"""Part 4 of ``bench/gpu_check.py``: a short real-data training cell of each app.

Each cell is the app's own ``train`` command (``python -m apps.<app>.train --config ...``) run in
a child process into a scratch run directory, a few hundred steps on the GPU (a few in smoke
mode), with the periodic work that is not training turned off or pushed to the end. The cell
reports whether the command finished (exit status 0 and the last step's checkpoint whole), its
wall time, and steps/s between its first and last logged steps, which leaves out start-up (data,
tokenizer, first kernels). A cell whose data folder is not configured is skipped with a line
saying so; a cell that fails is recorded with the end of its output, and the next cell runs.
"""

from __future__ import annotations

import collections
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.gpu_report import Context, Section, Skipped, fmt, table

ROOT = Path(__file__).resolve().parents[1]
TAIL_LINES = 15  # lines of a failed cell's output kept in the report


@dataclass(frozen=True)
class Cell:
    """One app's real-data training cell."""

    app: str
    data: str  # what it trains on, for the report
    config: str  # relative to the repository root
    env: str  # the variable naming the data folder
    steps: int  # on the GPU
    timeout_s: int  # on the GPU; the child is killed past it
    rate_key: str  # the throughput key of its training records in metrics.jsonl
    final_keys: tuple[str, ...]  # values of the last records shown in the report
    overrides: tuple[str, ...] = ()
    smoke_overrides: tuple[str, ...] = ()


CELLS = (
    Cell("gan", "KMNIST", "configs/gan/kmnist.yaml", "LEAKYLAB_KMNIST_DIR", 500, 180, "images_per_s",
         ("loss_d", "loss_g"), overrides=("train.fid_every=0", "train.sample_every=0"),
         smoke_overrides=("model.ngf=8", "model.ndf=8", "train.batch_size=8")),
    Cell("translation", "Multi30k de-en", "configs/translation/multi30k.yaml", "LEAKYLAB_MULTI30K_DIR", 300, 180,
         "tokens_per_s", ("loss", "valid_loss", "valid_bleu"),
         smoke_overrides=("model.d_model=32", "model.heads=2", "model.enc_layers=1", "model.dec_layers=1",
                          "model.d_ff=64", "tokenizer.vocab_size=300", "train.max_tokens=256",
                          "train.eval_sentences=4")),
)
SMOKE_STEPS, SMOKE_LOG_EVERY, SMOKE_TIMEOUT_S = 4, 2, 180  # two logged windows: steps/s between them


def command(cell: Cell, out: Path, steps: int, smoke: bool) -> list[str]:
    """The app's train command for this cell: one checkpoint, at the end; no TensorBoard."""
    args = [sys.executable, "-m", f"apps.{cell.app}.train", "--config", cell.config, f"out={out}",
            f"steps={steps}", f"train.checkpoint_every={steps}", "train.tracker=none", *cell.overrides]
    return args + ([f"train.log_every={SMOKE_LOG_EVERY}", *cell.smoke_overrides] if smoke else [])


def run_streamed(cmd: list[str], timeout_s: float, ctx: Context) -> tuple[int | None, list[str]]:
    """Run ``cmd`` from the repository root, echoing its output as it comes; the exit status
    (``None`` when killed at the timeout) and the last lines of the output."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_MININTERVAL": os.environ.get("TQDM_MININTERVAL", "5")}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace")
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        proc.kill()

    timer = threading.Timer(timeout_s, kill)
    timer.start()
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            tail.append(line)
            ctx.say(f"    | {line}")
        code = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:  # interrupted while reading: leave no child behind
            proc.kill()
            proc.wait()
    return (None if killed.is_set() else code), list(tail)


def read_records(run: Path) -> list[dict]:
    """metrics.jsonl's records (a torn last line is ignored)."""
    path = run / "metrics.jsonl"
    out = []
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def summarise(cell: Cell, run: Path, steps: int) -> dict:
    """steps/s between the first and last logged training steps, the median throughput of the
    records after the first (its window holds the start-up), and the last value of each final key."""
    records = read_records(run)
    train = [r for r in records if cell.rate_key in r]
    out: dict = {"logged": len(train)}
    if len(train) >= 2 and train[-1]["time"] > train[0]["time"]:
        out["steps_per_s"] = (train[-1]["step"] - train[0]["step"]) / (train[-1]["time"] - train[0]["time"])
    if train:
        out["rate"] = statistics.median(r[cell.rate_key] for r in (train[1:] or train))
    for key in cell.final_keys:
        values = [r[key] for r in records if key in r]
        if values:
            out[key] = values[-1]
    return out


def part_apps(ctx: Context) -> Section:
    """Each app's train command on its real data, a short run in a scratch run directory."""
    section, rows, notes, skipped = Section(), [], [], []
    steps_of = {c.app: SMOKE_STEPS if ctx.smoke else c.steps for c in CELLS}
    for cell in CELLS:
        folder = os.environ.get(cell.env, "")
        if not folder or not Path(folder).is_dir():
            why = f"${cell.env} is not set" if not folder else f"${cell.env}={folder} is not a folder"
            skipped.append(f"{cell.app} ({cell.data}): skipped, {why}: no data for this cell here")
            rows.append([cell.app, cell.data, "–", "skipped (no data)", "–", "–", "–", "–"])
            ctx.say(f"  apps {cell.app}: skipped ({why})")
            continue
        steps = steps_of[cell.app]
        timeout_s = SMOKE_TIMEOUT_S if ctx.smoke else cell.timeout_s
        out = ctx.tmp / "cells" / cell.app
        cmd = command(cell, out, steps, ctx.smoke)
        shown = " ".join(["python", *cmd[1:]]).replace(str(out), f"<tmp>/{cell.app}")
        notes.append(f"- {cell.app}: `{shown}` with `${cell.env}` = `{folder}`")
        ctx.say(f"  apps {cell.app}: {shown}")
        t0 = time.perf_counter()
        code, tail = run_streamed(cmd, timeout_s, ctx)
        wall = time.perf_counter() - t0
        whole = (out / "checkpoints" / f"step_{steps:08d}" / "meta.json").is_file()
        finished = code == 0 and whole
        info = summarise(cell, out, steps)
        status = ("yes" if finished else f"no: killed after {timeout_s} s" if code is None else
                  f"no: exit {code}" if code else "no: no final checkpoint")
        rows.append([cell.app, cell.data, steps, status, f"{wall:.1f}",
                     fmt(info["steps_per_s"]) if "steps_per_s" in info else "–",
                     f"{fmt(info['rate'])} {cell.rate_key.replace('_per_s', '/s')}" if "rate" in info else "–",
                     ", ".join(f"{k} {fmt(info[k])}" for k in cell.final_keys if k in info) or "–"])
        ctx.say(f"  apps {cell.app}: {'finished' if finished else 'FAILED'} in {wall:.1f} s")
        if not finished:
            section.failed_cells.append(f"{cell.app}: {status}")
            notes += [f"  {cell.app} failed ({status}); the end of its output:", "", "  ```",
                      *(f"  {line}" for line in tail), "  ```"]
    if len(skipped) == len(CELLS):
        raise Skipped("; ".join(skipped))
    section.lines += [
        "Each app's own train command in a scratch run directory, "
        + (f"{SMOKE_STEPS} steps with tiny models (smoke: the overrides below)" if ctx.smoke else
           ", ".join(f"{c.app} {c.steps} steps" for c in CELLS) + ", the config's model, data and recipe")
        + "; the GAN's periodic FID and sample grids off, one checkpoint at the last step. Finished = exit "
        "status 0 and that checkpoint whole. Wall time is the whole command (start-up, data, tokenizer, final "
        "validation); steps/s is measured between the first and the last logged training steps; the throughput "
        "is the median of the logged windows after the first.", ""]
    section.lines += table(["app", "data", "steps", "finished", "wall s", "steps/s", "throughput", "last values"],
                           rows, right_from=4)
    section.lines += [""] + [f"- {s}" for s in skipped] + notes
    return section
