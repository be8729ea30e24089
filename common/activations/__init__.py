"""Activations: one factory for every activation the suite compares, the fused bias +
LeakyReLU + gain module, and ``swap_activations`` for users' own models.

Typical use::

    from common.activations import ACTIVATIONS, make_activation, carries_bias
    conv = nn.Conv2d(64, 128, 3, padding=1, bias=not carries_bias(name))
    act = make_activation(name, channels=128)            # name from a config, one of ACTIVATIONS

    from common.activations import swap_activations
    swap_activations(user_model, "leaky_relu", alpha=0.2)  # ReLU modules → LeakyReLU(0.2), re-init

Only activation *modules* are seen: functional calls (``F.relu(x)``) in a ``forward`` are
invisible to :func:`swap_activations` and to the dead-unit probes.
"""

from common.activations.factory import (
    ACTIVATION_TYPES,
    ACTIVATIONS,
    SWAPPABLE_TYPES,
    activation_alpha,
    activation_gain,
    activation_params,
    carries_bias,
    check_activation_name,
    is_activation,
    make_activation,
)
from common.activations.fused import FusedLeakyReLU
from common.activations.graph import Link, LinkGraph, find_links
from common.activations.swap import SwapRecord, swap_activations

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_TYPES",
    "SWAPPABLE_TYPES",
    "FusedLeakyReLU",
    "Link",
    "LinkGraph",
    "SwapRecord",
    "activation_alpha",
    "activation_gain",
    "activation_params",
    "carries_bias",
    "check_activation_name",
    "find_links",
    "is_activation",
    "make_activation",
    "swap_activations",
]
