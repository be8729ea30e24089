"""Optimizer parameter groups that keep weight decay off biases, norms and activation parameters.

L2 decay on a dead ReLU unit's bias is the one force still acting on it (its gradient is 0), and
it pulls the bias toward 0 geometrically, b_t = (1 - ηλ)^t b_0: harmless for a positive bias, but
the classic recipe (nanoGPT, minGPT) is simply not to decay 1-D parameters. Here: weights of
Linear/Conv/Embedding-like layers (≥ 2-D) decay; biases, norm scales/shifts and activation
parameters (PReLU slopes, FusedLeakyReLU biases) do not — unless ``decay_biases`` puts every bias
back in (the negative control for the seed text's claim).
"""

from __future__ import annotations

from torch import nn

from common.activations.graph import NORM_TYPES
from common.probes.topology import activation_kind

try:  # RMSNorm only exists in newer torch
    _NORMS: tuple[type[nn.Module], ...] = NORM_TYPES + (nn.RMSNorm, nn.LocalResponseNorm)
except AttributeError:
    _NORMS = NORM_TYPES + (nn.LocalResponseNorm,)


def param_groups(model: nn.Module, weight_decay: float, *, decay_biases: bool = False) -> list[dict]:
    """``[{"params": [...], "weight_decay": weight_decay, "group": "decay"},
    {"params": [...], "weight_decay": 0.0, "group": "no_decay"}]`` (empty groups dropped).

    Every parameter of ``model`` lands in exactly one group (asserted; shared parameters once).
    """
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    seen: set[int] = set()
    for module in model.modules():
        special = isinstance(module, _NORMS) or activation_kind(module) is not None
        for pname, p in module.named_parameters(recurse=False):
            if id(p) in seen:
                continue
            seen.add(id(p))
            is_bias = pname == "bias" or pname.endswith("_bias")
            if is_bias and decay_biases:
                decay.append(p)
            elif special or is_bias or p.dim() < 2:
                no_decay.append(p)
            else:
                decay.append(p)
    every = {id(p) for p in model.parameters()}
    ids_d, ids_n = {id(p) for p in decay}, {id(p) for p in no_decay}
    assert not ids_d & ids_n and ids_d | ids_n == every and len(decay) + len(no_decay) == len(every), \
        "param_groups: a parameter is in no group or in two"
    groups = [{"params": decay, "weight_decay": float(weight_decay), "group": "decay"},
              {"params": no_decay, "weight_decay": 0.0, "group": "no_decay"}]
    return [g for g in groups if g["params"]]
