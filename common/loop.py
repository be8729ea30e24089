"""The training-loop skeleton the apps share, so each app's ``train()`` holds only its own step.

What every loop does the same way lives here: the accelerator, the loop's config keys, resuming
the loop's own state (probes, remedies, the open logging window), what happens after each step
(fault point, divergence check, probe window, remedies), the metrics record, checkpoints,
teardown and the command line. An app's ``train()`` reads top to bottom::

    accelerator = start_accelerator(cfg.train, cfg.seed)
    ... data, run directory, models, optimizers, probes, remedies ...
    loop = TrainLoop(cfg.train, cfg.steps, run, accelerator, probes, remedies, window=("loss",))
    extra = loop.resume({"model": model}, {"optimizer": optimizer})  # None for a fresh run
    model, optimizer = accelerator.prepare(model, optimizer)
    if loop.finished:
        return run
    loop.begin()
    for step in range(loop.start, cfg.steps):
        loss = ...                             # the app's step; it adds to loop.window
        done = loop.after_step(step, work=tokens)
        if loop.log_due(done):
            means = loop.window.read()
            loop.log({"step": done, "loss": means["loss"], ...})
        ...                                    # the app's own periodic work (samples, evaluation)
        if loop.checkpoint_due(done):
            loop.checkpoint(done)
    loop.end()
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, Sequence

import torch

from common.config import parse_cli, require
from common.faults import fault_point
from common.progress import progress
from common.rundir import RunDir
from common.runlock import released_on_exit
from common.tracking import Tracker
from common.training import DivergenceGuard, make_accelerator, seed_everything


@dataclass
class LoopConfig:
    """The ``train`` keys every app's loop understands; each app's ``TrainConfig`` extends it."""

    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    """Autocast precision of the forward passes: ``no``, ``bf16`` (CPU or GPU) or ``fp16`` (GPU only)."""
    cpu: bool = False
    """Train on the CPU even where a GPU exists."""
    log_every: int = 50
    """Every this many steps (and at the last) one record goes to metrics.jsonl and the tracker: the
    mean of each logged value over the steps since the previous record, and the throughput."""
    checkpoint_every: int = 1000
    """Checkpoint every this many steps (and at the last); re-running a killed run's command resumes
    from the latest one."""
    keep_checkpoints: int = 2
    """How many of the latest checkpoints are kept; older ones are deleted."""
    check_every: int = 25
    """Divergence check: the device-side flag of non-finite losses is read (one host sync) every
    this many steps and before every checkpoint, so a diverged model is never saved."""
    progress: bool = True
    """tqdm progress bar on the main process (may change on resume)."""
    tracker: Literal["auto", "none", "tensorboard"] = "auto"
    """``auto``: TensorBoard logs under RUN/tb when tensorboard is installed; ``tensorboard``: the
    same, and an error when it is not; ``none``: off (metrics.jsonl is written either way)."""

    def __post_init__(self) -> None:
        for key in ("log_every", "checkpoint_every", "keep_checkpoints", "check_every"):
            require(getattr(self, key) >= 1, key, "must be >= 1", getattr(self, key))


def start_accelerator(cfg: LoopConfig, seed: int) -> Any:
    """This process's ``accelerate.Accelerator`` (DDP under ``accelerate launch``), every RNG seeded."""
    # accelerate sets up gloo for several CPU processes only when told cpu=True; on a machine
    # without a GPU, `accelerate launch --multi_gpu` would otherwise start independent runs.
    accelerator = make_accelerator(cfg.mixed_precision,
                                   cpu=True if cfg.cpu or not torch.cuda.is_available() else None)
    seed_everything(seed)
    return accelerator


class LogWindow:
    """The logged values of the steps since the last record, summed on the device (no host sync
    per step), with their step count and work (images, tokens) for the throughput.

    A checkpoint stores the sums averaged over processes and the step count (``log_sums``,
    ``log_steps``), so a run resumed inside a window logs the means an uninterrupted run logs.
    """

    def __init__(self, names: Sequence[str], accelerator: Any):
        self.names = tuple(names)
        self.accelerator = accelerator
        self.sums = torch.zeros(len(self.names), device=accelerator.device)  # in place: a step may hold it
        self.steps = 0
        self.work = 0
        self.started = time.time()
        self.finite = True

    def add(self, *values: torch.Tensor) -> None:
        """Add one step's values (0-d tensors, in ``names`` order)."""
        self.sums += torch.stack([v.detach() for v in values])

    def totals(self) -> torch.Tensor:
        """The sums averaged over processes, on the CPU (a collective: every process calls it)."""
        world = self.accelerator.num_processes
        return (self.accelerator.reduce(self.sums, "sum") / world if world > 1 else self.sums).cpu().clone()

    def read(self) -> dict[str, float]:
        """The mean of each value over the window (a collective: every process calls it)."""
        means = {name: total / self.steps for name, total in zip(self.names, self.totals().tolist())}
        self.finite = all(math.isfinite(v) for v in means.values())
        return means

    def per_second(self) -> float:
        """Work per second of wall-clock time since the window opened (or the run resumed)."""
        return self.work / max(time.time() - self.started, 1e-9)

    def reset(self) -> None:
        self.sums.zero_()
        self.steps, self.work, self.started, self.finite = 0, 0, time.time(), True

    def state_dict(self) -> dict:
        """For a checkpoint's extra (a collective: every process calls it)."""
        return {"log_sums": self.totals(), "log_steps": self.steps}

    def load_state_dict(self, extra: Mapping[str, Any]) -> None:
        """Reopen the window a checkpoint's extra carries (no window in it: an empty one)."""
        if "log_sums" in extra:
            sums = extra["log_sums"]
        elif "log_loss_sum" in extra:  # the translation trainer's format before this loop
            sums = torch.tensor([float(extra["log_loss_sum"])])
        else:
            return
        # every process holds the average: the cross-process mean of the next read adds it once
        self.sums.zero_()
        self.sums += sums.to(self.sums.device)
        self.steps = int(extra.get("log_steps", 0))


class TrainLoop:
    """One run's loop machinery around the app's step: resume, after-step cadence, log, checkpoint.

    ``probes`` and ``remedies`` are the run's (``common.probes``, ``common.remedies``); ``window``
    names the values the app's step adds to :attr:`window` each step.
    """

    def __init__(self, cfg: LoopConfig, steps: int, run: RunDir, accelerator: Any, probes: Any, remedies: Any,
                 window: Sequence[str]):
        self.cfg, self.steps, self.run, self.accelerator = cfg, steps, run, accelerator
        self.probes, self.remedies = probes, remedies
        self.guard = DivergenceGuard(cfg.check_every)
        self.window = LogWindow(window, accelerator)
        self.start = 0
        self.models: dict[str, torch.nn.Module] = {}
        self.optimizers: dict[str, Any] = {}
        self.acted: dict[str, int] = {}  # what the remedies did since the last record
        self.last_good: Any = None
        self.tracker: Tracker | None = None
        self.bar: Any = None

    # -- before the steps ---------------------------------------------------------------------

    def resume(self, models: Mapping[str, torch.nn.Module], optimizers: Mapping[str, Any]) -> dict | None:
        """Load the latest checkpoint into ``models`` and ``optimizers`` — the ones every checkpoint
        of this run saves — and the loop's own state (probes, remedies, logging window).

        Returns the checkpoint's extra, for the app's own keys; None for a fresh run.
        """
        self.models, self.optimizers = dict(models), dict(optimizers)
        state = self.run.load_checkpoint(self.models, self.optimizers)
        if state is None:
            return None
        self.start, extra = state["step"], state["extra"]
        if "probes" in extra:
            self.probes.load_state_dict(extra["probes"])
        if "remedies" in extra:
            self.remedies.load_state_dict(extra["remedies"])
        self.window.load_state_dict(extra)
        return extra

    @property
    def finished(self) -> bool:
        """The run already reached ``steps``: nothing to train."""
        return self.start >= self.steps

    def begin(self) -> None:
        """Open the tracker and the progress bar; start the clock."""
        main = self.accelerator.is_main_process
        self.tracker = Tracker(self.cfg.tracker, self.run, main)
        # outside a terminal (a log file, the comparison runner) a line every few seconds, not per step
        self.bar = progress(total=self.steps, desc="train", initial=self.start, enabled=main and self.cfg.progress)
        self.last_good = self.run.latest_checkpoint()
        self.window.started = time.time()

    # -- after each step ----------------------------------------------------------------------

    def after_step(self, step: int, work: int = 0) -> int:
        """Count step ``step`` (0-based) with its ``work`` into the window, then run the divergence
        check when due, log a finished probe window, and let the remedies act on it. Returns the
        number of steps done."""
        done = step + 1
        self.window.steps += 1
        self.window.work += work
        self.bar.update(1)
        fault_point("after_step", done)
        if self.guard.due(done):
            self._check(done)
        if self.probes.ready():
            world = self.accelerator.num_processes
            self.run.log_probes(self.probes.read(reduce=self._reduce_sum if world > 1 else None))
        for key, count in self.remedies.after_step(step).items():  # kick / ReDo act on the window just read
            self.acted[key] = self.acted.get(key, 0) + count
        return done

    def log_due(self, done: int) -> bool:
        return done % self.cfg.log_every == 0 or done == self.steps

    def log(self, record: dict, **postfix: str) -> None:
        """Write ``record`` (with ``step``), plus the remedies' counts since the last one, to
        metrics.jsonl and the tracker, show ``postfix`` on the progress bar, and open a new window.
        A non-finite mean just read stops the run now: it is already synced, no need to wait for
        the next check."""
        record = {**record, **self.acted}
        self.run.log_metrics(record)
        self.tracker.log(record, record["step"])
        self.bar.set_postfix(**postfix)
        finite = self.window.finite
        self.window.reset()
        self.acted = {}
        if not finite:
            self.guard.update(torch.tensor(float("nan")))
            self._check(record["step"])

    def checkpoint_due(self, done: int) -> bool:
        return done % self.cfg.checkpoint_every == 0 or done == self.steps

    def checkpoint(self, done: int, extra: Mapping[str, Any] | None = None) -> None:
        """Save the models, optimizers, loop state and the app's ``extra`` (every process calls it);
        a diverged model is refused first."""
        self._check(done)
        loop_state = {"probes": self.probes.state_dict(), "remedies": self.remedies.state_dict(),
                      **self.window.state_dict()}
        self.last_good = self.run.save_checkpoint(done, self.models, self.optimizers,
                                                  extra={**(extra or {}), **loop_state},
                                                  keep=self.cfg.keep_checkpoints)

    def end(self) -> None:
        """Close the bar and tracker, take the probes' and remedies' hooks off, wait for every process."""
        self.bar.close()
        self.tracker.close()
        self.probes.detach()
        self.remedies.remove()
        self.accelerator.wait_for_everyone()

    # -- helpers ------------------------------------------------------------------------------

    def _check(self, done: int) -> None:
        self.guard.check(done, str(self.last_good) if self.last_good else None)

    def _reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        return self.accelerator.reduce(t, "sum")


def train_main(schema: type, train: Callable[..., Any], argv: Sequence[str], *, app: str, description: str) -> int:
    """The ``train`` command line: ``--config FILE [key=value ...] [--allow-config-change]``."""
    cfg, args = parse_cli(
        schema, argv, app=app, description=description,
        extra_args=lambda p: p.add_argument("--allow-config-change", action="store_true",
                                            help="resume an existing run directory even though its config differs"),
    )
    with released_on_exit():  # the run's lock goes with the command, however it ends
        train(cfg, allow_config_change=args.allow_config_change)
    return 0
