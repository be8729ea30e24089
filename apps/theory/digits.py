"""The small real task behind claims 5–7: an MLP classifying scikit-learn's handwritten digits.

Inputs are the raw pixels scaled to [0, 1] (non-negative, so a unit with negative weights and a
small positive bias can be dead on every image — claim 6 needs that). Training is full-batch
SGD on a fixed subset, so every run is a deterministic function of the seed.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn


@lru_cache(maxsize=1)
def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    d = load_digits()
    return torch.tensor(d.data, dtype=torch.float32) / 16.0, torch.tensor(d.target)


def digits_subset(seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images (pixels in [0, 1]) and labels, chosen by ``seed``."""
    x, y = _digits()
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
    return x[idx], y[idx]


def make_mlp(seed: int, hidden: int, act: nn.Module) -> nn.Sequential:
    """64 → hidden → act → 10, torch's default init under ``seed``."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, hidden), act, nn.Linear(hidden, 10))


def kill_units(layer: nn.Linear, x: torch.Tensor, units: torch.Tensor, margin: float) -> None:
    """Make ``units`` dead on ``x``: bias = −max_x(w·x) − margin, so every pre-activation ≤ −margin."""
    with torch.no_grad():
        z = x @ layer.weight[units].T
        layer.bias[units] = -z.max(dim=0).values - margin


def max_preact(layer: nn.Linear, x: torch.Tensor, units: torch.Tensor | None = None) -> torch.Tensor:
    """Per unit, the largest pre-activation over ``x``: > 0 means alive on some input."""
    with torch.no_grad():
        z = layer(x)
        return z.max(dim=0).values if units is None else z[:, units].max(dim=0).values


def loss_fn(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(net(x), y)
