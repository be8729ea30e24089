"""Settings of the dying-unit remedies (one dataclass, validated on construction)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from common.config import require
from common.probes.config import REDO_TAU


@dataclass
class RemedyConfig:
    """Which remedies run and how hard. Everything defaults to off except excluding biases and
    norm parameters from weight decay (see common.remedies.groups)."""

    weight_decay: float = 0.0
    """L2 weight decay λ for the decayed group (weights of Linear/Conv layers)."""
    decay_biases: bool = False
    """Also decay biases (the negative control: a dead unit's bias then shrinks as (1 - ηλ)^t)."""
    bias_init: Optional[float] = None
    """Set the bias in front of every rectifier to this at start (0.1 is the classic remedy)."""
    warming_gamma: float = 0.0
    """Bias warming: γ added to every rectifier's pre-activation at step 0 (0 = off)."""
    warming_steps: int = 0
    """Bias warming: γ reaches exactly 0 at this step and stays there."""
    warming_schedule: Literal["linear", "cosine"] = "linear"
    """Bias warming: the shape of the anneal from γ to 0."""
    kick_every: int = 0
    """Thermal kick: every N steps (0 = off), on the units the latest probe window found dead."""
    kick_std: float = 0.1
    """Thermal kick: std of the noise added to a dead unit's incoming weights and bias (absolute)."""
    redo_every: int = 0
    """ReDo: every N steps (0 = off), recycle the units of the latest probe window with s_i <= redo_tau."""
    redo_tau: float = REDO_TAU
    """ReDo: dormancy threshold on s_i = E|h_i| / mean_k E|h_k| (inclusive)."""

    def __post_init__(self) -> None:
        require(self.weight_decay >= 0, "weight_decay", "must be >= 0", self.weight_decay)
        require(self.warming_gamma >= 0, "warming_gamma", "must be >= 0", self.warming_gamma)
        require(self.warming_steps >= 0, "warming_steps", "must be >= 0", self.warming_steps)
        require(self.warming_gamma == 0 or self.warming_steps >= 1, "warming_steps",
                "must be >= 1 when warming_gamma > 0 (the steps over which γ anneals to 0)", self.warming_steps)
        require(self.warming_schedule in ("linear", "cosine"), "warming_schedule", "must be linear or cosine",
                self.warming_schedule)
        require(self.kick_every >= 0, "kick_every", "must be >= 0 (0 = off)", self.kick_every)
        require(self.kick_std > 0, "kick_std", "must be > 0", self.kick_std)
        require(self.redo_every >= 0, "redo_every", "must be >= 0 (0 = off)", self.redo_every)
        require(0.0 <= self.redo_tau < 1.0, "redo_tau", "must be in [0, 1)", self.redo_tau)
