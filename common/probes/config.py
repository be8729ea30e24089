"""Settings of the dead-unit probes (one dataclass, validated on construction)."""

from __future__ import annotations

from dataclasses import dataclass, field

from common.config import require

# ReDo's reference threshold (Sokar et al. 2023, the DQN setting): a unit is tau-dormant when its
# mean |activation| is at most 2.5% of its layer's average. tau = 0 makes "dormant" mean "output
# exactly 0 on everything", which for LeakyReLU never happens, so a small positive tau is the
# useful default for a leaky-vs-ReLU comparison.
REDO_TAU = 0.025


@dataclass
class ProbeConfig:
    """How often the probes sample, how long a report window is, and the ReDo threshold."""

    enabled: bool = True
    """Attach the probes at all; when false every call is a cheap no-op."""
    every: int = 10
    """Sample one optimisation step in ``every`` (steps with ``step % every == 0``)."""
    window: int = 20
    """Report (``ready()``) after this many sampled steps; reading starts a new window."""
    tau: float = REDO_TAU
    """ReDo dormancy threshold: unit i is dormant when s_i <= tau (inclusive), where
    s_i = E|h_i| / mean_k E|h_k| over the window."""
    unit_dims: dict[str, int] = field(default_factory=dict)
    """Per-layer override of the tensor dim that indexes units, keyed by fnmatch pattern on
    ``model.layer`` or ``layer`` (first match wins), e.g. ``{"D.*": 1, "*ffn*": -1}``. Layers not
    matched get it inferred (see common.probes.topology.infer_unit_dim)."""

    def __post_init__(self) -> None:
        require(self.every >= 1, "every", "must be >= 1 (sample one step in N)", self.every)
        require(self.window >= 1, "window", "must be >= 1 sampled steps", self.window)
        require(0.0 <= self.tau < 1.0, "tau", "must be in [0, 1) (a fraction of the layer mean)", self.tau)
        for pattern, dim in self.unit_dims.items():
            require(isinstance(dim, int) and not isinstance(dim, bool), f"unit_dims.{pattern}",
                    "must be an integer tensor dim", dim)
