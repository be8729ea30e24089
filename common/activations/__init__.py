"""Activations: one registry that knows every activation the suite compares (how to build it by
name, how to read α, gain and bias from a module), the fused bias + LeakyReLU + gain module, and
``swap_activations`` for users' own models.

Typical use::

    from common.activations import ACTIVATIONS, make_activation, carries_bias
    conv = nn.Conv2d(64, 128, 3, padding=1, bias=not carries_bias(name))
    act = make_activation(name, channels=128)            # name from a config, one of ACTIVATIONS

    from common.activations import swap_activations
    swap_activations(user_model, "leaky_relu", alpha=0.2)  # ReLU modules → LeakyReLU(0.2), re-init

    from common.activations import Param, register_activation
    from common.activations.params import nonnegative
    register_activation("my_act", types=(MyAct,), kind="rectifier",    # one entry, and every
                        build=lambda channels, dim, alpha: MyAct(alpha),   # consumer knows it
                        params=(Param("alpha", 0.1, nonnegative),), alpha=lambda m: m.alpha)

Only activation *modules* are seen: functional calls (``F.relu(x)``) in a ``forward`` are
invisible to :func:`swap_activations` and to the dead-unit probes.
"""

from typing import Any

from common.activations.fused import FusedLeakyReLU
from common.activations.graph import Link, LinkGraph, find_links
from common.activations.registry import (
    ACTIVATIONS,
    activation_alpha,
    activation_gain,
    activation_params,
    activation_spec,
    activation_types,
    carries_bias,
    check_activation_name,
    is_activation,
    make_activation,
    own_bias,
    register_activation,
    swappable_types,
    unregister_activation,
    validate_activation,
)
from common.activations.spec import ActivationSpec, Param
from common.activations.swap import SwapRecord, swap_activations


def __getattr__(name: str) -> Any:
    # Computed on access, so that they include activations registered after import.
    if name == "ACTIVATION_TYPES":
        return activation_types()
    if name == "SWAPPABLE_TYPES":
        return swappable_types()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_TYPES",
    "ActivationSpec",
    "SWAPPABLE_TYPES",
    "FusedLeakyReLU",
    "Link",
    "LinkGraph",
    "Param",
    "SwapRecord",
    "activation_alpha",
    "activation_gain",
    "activation_params",
    "activation_spec",
    "activation_types",
    "carries_bias",
    "check_activation_name",
    "find_links",
    "is_activation",
    "make_activation",
    "own_bias",
    "register_activation",
    "swap_activations",
    "swappable_types",
    "unregister_activation",
    "validate_activation",
]
