"""Which weight layer feeds which activation module in a user's model.

Both the leaky-aware init (a layer's init depends on the activation that *follows* it) and
:func:`swap_activations` (an activation's new init and bias go to the layer that *feeds* it) need
this relation, and a model's modules do not record it: only the forward pass does. Two ways to
recover it, tried in this order by ``method='auto'``:

1. ``'fx'``: ``torch.fx`` symbolic tracing, with weight layers, norms and activations kept as
   leaves. From each call of an activation module we walk back through its input until a weight
   layer (``nn.Linear``, ``nn.ConvNd``, ``nn.ConvTransposeNd``): passing through only norm
   layers (BatchNorm, LayerNorm, GroupNorm, InstanceNorm), dropout, ``nn.Identity`` and pure
   shape operations (view, reshape, flatten, permute, ...). Anything else in between — an
   addition, a concatenation, pooling, an unknown module — means "no feeding layer". This sees
   the real data flow, including an activation module that is called after several layers.
2. ``'order'`` (used when tracing fails, e.g. data-dependent control flow): module registration
   order. The leaf modules are listed as ``named_modules()`` gives them, and an activation's
   feeding layer is the nearest weight layer before it with nothing but norm/dropout/identity
   leaves in between. Right for ``nn.Sequential`` models and for modules that register their
   layers in the order they use them; wrong for a module that registers in another order.

Functional calls (``F.relu(x)``, ``torch.relu``, ``x.relu()``) are not modules: neither way
links them, ``swap_activations`` cannot replace them and the probes cannot see them. When
tracing works, :attr:`LinkGraph.functional` lists them so callers can warn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import fx, nn

from common.activations.factory import is_activation

#: Layers whose weight the leaky-aware init sets and whose bias a fused activation can take over.
WEIGHT_TYPES: tuple[type[nn.Module], ...] = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)

#: Modules that may sit between a weight layer and its activation without breaking the link.
NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.modules.instancenorm._InstanceNorm,
)
TRANSPARENT_TYPES: tuple[type[nn.Module], ...] = NORM_TYPES + (
    nn.Identity,
    nn.modules.dropout._DropoutNd,
)

_SHAPE_METHODS = {"view", "reshape", "flatten", "permute", "transpose", "contiguous", "squeeze", "unsqueeze"}
_SHAPE_FUNCTIONS = {torch.flatten, torch.reshape, torch.permute, torch.transpose, torch.squeeze, torch.unsqueeze}

_FUNCTIONAL_ACTS = {
    F.relu, F.relu_, torch.relu, torch.relu_, F.relu6, F.leaky_relu, F.leaky_relu_, F.prelu,
    F.rrelu, F.elu, F.celu, F.selu, F.gelu, F.silu, F.mish, F.softplus, F.hardswish, F.hardtanh,
    torch.sigmoid, F.sigmoid, torch.tanh, F.tanh,
}  # fmt: skip
_FUNCTIONAL_METHODS = {"relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_"}


@dataclass(frozen=True)
class Link:
    """One weight layer → activation module connection (qualified module names)."""

    layer: str
    activation: str
    #: transparent modules / shape ops between them, in forward order.
    between: tuple[str, ...] = ()
    #: True when nothing sits between them, the layer's output goes only to this activation and
    #: this is the activation module's only use: then its bias may move into the activation.
    exclusive: bool = False


@dataclass
class LinkGraph:
    """All links of a model, how they were found, and the functional activations seen."""

    links: list[Link]
    method: Literal["fx", "order"]
    #: descriptions of functional activation calls (only known when ``method == 'fx'``).
    functional: list[str] = field(default_factory=list)

    def feeders(self, activation: str) -> list[str]:
        """The weight layers feeding activation module ``activation`` (several if reused)."""
        return _unique(link.layer for link in self.links if link.activation == activation)

    def following(self, layer: str) -> list[str]:
        """The activation modules applied to weight layer ``layer``'s output."""
        return _unique(link.activation for link in self.links if link.layer == layer)

    def link(self, layer: str, activation: str) -> Link | None:
        return next((k for k in self.links if k.layer == layer and k.activation == activation), None)


def _unique(names) -> list[str]:
    return list(dict.fromkeys(names))


class _LeafTracer(fx.Tracer):
    """Keeps weight layers, transparent layers and activations (ours included) as leaves."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if is_activation(m) or isinstance(m, WEIGHT_TYPES + TRANSPARENT_TYPES):
            return True
        return super().is_leaf_module(m, module_qualified_name)


def find_links(model: nn.Module, method: Literal["auto", "fx", "order"] = "auto") -> LinkGraph:
    """Recover the weight layer → activation links of ``model`` (see the module docstring).

    ``method='fx'`` raises if tracing fails; ``'auto'`` falls back to ``'order'``.
    """
    if method not in ("auto", "fx", "order"):
        raise ValueError(f"method must be 'auto', 'fx' or 'order' (got {method!r})")
    if method in ("auto", "fx"):
        try:
            graph = _LeafTracer().trace(model)
        except Exception:
            # Tracing runs the user's forward on proxies; any failure (control flow on values,
            # unsupported ops, required extra arguments) just means "use the other method".
            if method == "fx":
                raise
        else:
            return _links_from_fx(model, graph)
    return _links_from_order(model)


def _links_from_fx(model: nn.Module, graph: fx.Graph) -> LinkGraph:
    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1

    links: list[Link] = []
    functional: list[str] = []
    for node in graph.nodes:
        if node.op == "call_function" and node.target in _FUNCTIONAL_ACTS:
            functional.append(f"{getattr(node.target, '__name__', node.target)} (node {node.name})")
        elif node.op == "call_method" and node.target in _FUNCTIONAL_METHODS:
            functional.append(f"Tensor.{node.target} (node {node.name})")
        if node.op != "call_module" or not is_activation(modules[node.target]):
            continue
        between: list[str] = []
        first = True
        src = node.args[0] if node.args else None
        while isinstance(src, fx.Node):
            if src.op == "call_module":
                m = modules[src.target]
                if isinstance(m, WEIGHT_TYPES):
                    exclusive = (
                        first
                        and len(src.users) == 1
                        and calls[node.target] == 1
                        and calls[src.target] == 1
                    )
                    links.append(Link(src.target, node.target, tuple(reversed(between)), exclusive))
                    break
                if not isinstance(m, TRANSPARENT_TYPES):
                    break
                if not isinstance(m, nn.Identity):
                    first = False
                between.append(src.target)
            elif _is_shape_op(src):
                first = False
                between.append(src.target if isinstance(src.target, str) else src.target.__name__)
            else:
                break
            src = src.args[0] if src.args else None
    return LinkGraph(links, "fx", functional)


def _is_shape_op(node: fx.Node) -> bool:
    if node.op == "call_method":
        return node.target in _SHAPE_METHODS
    if node.op == "call_function":
        return node.target in _SHAPE_FUNCTIONS
    return False


def _links_from_order(model: nn.Module) -> LinkGraph:
    leaves = [(n, m) for n, m in model.named_modules() if not any(True for _ in m.children())]
    links: list[Link] = []
    for i, (name, module) in enumerate(leaves):
        if not is_activation(module):
            continue
        between: list[str] = []
        first = True
        for prev_name, prev in reversed(leaves[:i]):
            if isinstance(prev, WEIGHT_TYPES):
                links.append(Link(prev_name, name, tuple(reversed(between)), first))
                break
            if not isinstance(prev, TRANSPARENT_TYPES):
                break
            if not isinstance(prev, nn.Identity):
                first = False
            between.append(prev_name)
    return LinkGraph(links, "order", [])
