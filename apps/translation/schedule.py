"""Learning-rate schedule as a pure function of the step (nanoGPT's ``get_lr``): resuming needs
no scheduler state, and the curve can be plotted or tested without training."""

from __future__ import annotations

import math

from apps.translation.config import OptimConfig


def get_lr(step: int, cfg: OptimConfig, total_steps: int) -> float:
    """Learning rate of optimisation step ``step`` (0-based): linear warm-up, then decay."""
    peak = cfg.lr
    if cfg.warmup > 0 and step < cfg.warmup:
        return peak * (step + 1) / cfg.warmup
    floor = peak * cfg.min_lr_ratio
    if cfg.schedule == "constant":
        return peak
    if cfg.schedule == "inverse_sqrt":
        # Vaswani et al.'s decay ∝ 1/√step, continuous at the end of warm-up; never below the floor.
        return max(floor, peak * math.sqrt(max(cfg.warmup, 1) / (step + 1)))
    span = max(1, total_steps - cfg.warmup)
    progress = min(1.0, (step - cfg.warmup) / span)
    if cfg.schedule == "linear":
        return floor + (peak - floor) * (1.0 - progress)
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))  # cosine
