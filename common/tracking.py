"""Experiment trackers beside ``metrics.jsonl``: TensorBoard through accelerate's tracker.

``train.tracker: auto`` logs to ``RUN/tb`` when tensorboard is installed and silently does nothing
otherwise (metrics.jsonl is always written); ``tensorboard`` insists, and a missing package is a
one-line error before training starts; ``none`` is off.
"""

from __future__ import annotations

from common.errors import UserError
from common.rundir import RunDir


class Tracker:
    """TensorBoard scalars via accelerate's tracker when tensorboard is installed (else nothing)."""

    def __init__(self, mode: str, run: RunDir, enabled: bool):
        self.tracker = None
        if mode == "none" or not enabled:
            return
        from accelerate.tracking import TensorBoardTracker
        from accelerate.utils import is_tensorboard_available

        if not is_tensorboard_available():  # optional, unless asked for explicitly
            if mode == "tensorboard":
                raise UserError("train.tracker=tensorboard but tensorboard is not installed; "
                                "pip install tensorboard or set train.tracker=none")
            return
        self.tracker = TensorBoardTracker("tb", str(run.path))
        self.tracker.start()

    def log(self, values: dict, step: int) -> None:
        if self.tracker is not None:
            self.tracker.log({k: v for k, v in values.items() if isinstance(v, (int, float))}, step=step)

    def close(self) -> None:
        if self.tracker is not None:
            self.tracker.finish()
