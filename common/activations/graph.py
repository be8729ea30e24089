"""Which weight layer feeds which activation module in a user's model.

Both the leaky-aware init (a layer's init depends on the activation that *follows* it) and
:func:`swap_activations` (an activation's new init and bias go to the layer that *feeds* it) need
this relation, and a model's modules do not record it: only the forward pass does.

The rule. An activation module is fed by a weight layer (``nn.Linear``, ``nn.ConvNd``,
``nn.ConvTransposeNd``) when the activation's input is that layer's output, possibly passed
through norm layers (BatchNorm, LayerNorm, GroupNorm, InstanceNorm), dropout, ``nn.Identity`` and
(fx only) pure shape operations (view, reshape, flatten, permute, ...). Anything else in between —
an addition, a concatenation, pooling, an unknown module — means "no feeding layer". Three ways
to see it, combined by ``method='auto'``:

1. ``'fx'``: ``torch.fx`` symbolic tracing, with weight layers, norms and activations kept as
   leaves: the real data flow without running anything, including an activation module called
   after several layers and functional consumers of a layer's output. Fails on data-dependent
   control flow, and cannot look inside torch's own composite modules (``nn.Transformer*``,
   ``nn.MultiheadAttention``), which fx keeps opaque.
2. ``'hooks'`` (needs ``example_input``): one eval-mode, no-grad forward pass with hooks that
   follow tensor identity from module outputs to module inputs. Exact for module-to-module flow
   under any control flow; functional uses of a tensor are invisible to it, so it never claims
   a link is exclusive (see :class:`Link`) and a fused activation then takes no bias.
3. ``'order'``: module registration order. The leaf modules as ``named_modules()`` lists them;
   the feeding layer is the nearest weight layer before the activation with nothing but
   norm/dropout/identity leaves in between. Right for ``nn.Sequential`` and for modules that
   register their layers in the order they use them; wrong otherwise (e.g.
   ``nn.TransformerEncoderLayer`` registers its activation after ``linear2`` and the norms).
   Like hooks, it never claims a link is exclusive.

``'auto'``: fx; activation modules fx could not see (inside opaque modules), or everything when
tracing fails, come from hooks when ``example_input`` is given, else from registration order.

Functional calls (``F.relu(x)``, ``torch.relu``, ``x.relu()``) are not modules: no method links
them, ``swap_activations`` cannot replace them and the probes cannot see them. When tracing
works, :attr:`LinkGraph.functional` lists them so callers can warn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Literal

import torch
import torch.nn.functional as F
from torch import fx, nn

from common.activations.registry import is_activation

Method = Literal["auto", "fx", "hooks", "order"]

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
    #: True when the layer's output reaches only this activation (every tensor on the way has a
    #: single user) and each module on the path is used once: then a bias can move along the path
    #: without changing the function. Only fx can prove it (it sees functional uses such as a
    #: residual ``+ h``); 'hooks' and 'order' never claim it.
    exclusive: bool = False


@dataclass
class LinkGraph:
    """All links of a model, how they were found, and the functional activations seen."""

    links: list[Link]
    #: 'fx', 'hooks', 'order', or 'fx+hooks' / 'fx+order' when fx missed some activations.
    method: str
    #: descriptions of functional activation calls (only known when fx tracing worked).
    functional: list[str] = field(default_factory=list)

    def feeders(self, activation: str) -> list[str]:
        """The weight layers feeding activation module ``activation`` (several if reused)."""
        return _unique(link.layer for link in self.links if link.activation == activation)

    def following(self, layer: str) -> list[str]:
        """The activation modules applied to weight layer ``layer``'s output."""
        return _unique(link.activation for link in self.links if link.layer == layer)

    def link(self, layer: str, activation: str) -> Link | None:
        return next((k for k in self.links if k.layer == layer and k.activation == activation), None)


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def find_links(model: nn.Module, method: Method = "auto", example_input: Any = None) -> LinkGraph:
    """Recover the weight layer → activation links of ``model`` (see the module docstring).

    ``example_input``: a tensor, or a tuple of positional arguments, for one forward pass (the
    'hooks' method; use a small batch). ``method='fx'`` raises if tracing fails.
    """
    if method not in ("auto", "fx", "hooks", "order"):
        raise ValueError(f"method must be 'auto', 'fx', 'hooks' or 'order' (got {method!r})")
    if method == "hooks" and example_input is None:
        raise ValueError("method='hooks' needs an example_input to run the model on")

    def fallback(only: set[str] | None) -> tuple[list[Link], str]:
        if example_input is not None:
            return _links_from_hooks(model, example_input, only), "hooks"
        return _links_from_order(model, only), "order"

    if method == "hooks":
        return LinkGraph(_links_from_hooks(model, example_input, None), "hooks")
    if method == "order":
        return LinkGraph(_links_from_order(model, None), "order")
    try:
        traced = _LeafTracer().trace(model)
    except Exception:
        # Tracing runs the user's forward on proxies; any failure (control flow on values,
        # unsupported ops, required extra arguments) just means "use the other method".
        if method == "fx":
            raise
        links, how = fallback(None)
        return LinkGraph(links, how)
    graph = _links_from_fx(model, traced)
    if method == "auto":
        called = {n.target for n in traced.nodes if n.op == "call_module"}
        hidden = {n for n, m in model.named_modules() if is_activation(m) and n not in called}
        if hidden:  # inside modules fx keeps opaque (nn.TransformerEncoderLayer, ...)
            links, how = fallback(hidden)
            graph.links += links
            graph.method = f"fx+{how}"
    return graph


class _LeafTracer(fx.Tracer):
    """Keeps weight layers, transparent layers and activations (ours included) as leaves."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if is_activation(m) or isinstance(m, WEIGHT_TYPES + TRANSPARENT_TYPES):
            return True
        return super().is_leaf_module(m, module_qualified_name)


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
        chain: list[fx.Node] = []  # transparent modules / shape ops, walking backwards
        src = node.args[0] if node.args else None
        while isinstance(src, fx.Node):
            if src.op == "call_module":
                m = modules[src.target]
                if isinstance(m, WEIGHT_TYPES):
                    path = chain + [src]
                    exclusive = (
                        calls[node.target] == 1
                        and all(len(n.users) == 1 for n in path)
                        and all(calls[n.target] == 1 for n in path if n.op == "call_module")
                    )
                    between = tuple(_node_name(n) for n in reversed(chain))
                    links.append(Link(src.target, node.target, between, exclusive))
                    break
                if not isinstance(m, TRANSPARENT_TYPES):
                    break
            elif not _is_shape_op(src):
                break
            chain.append(src)
            src = src.args[0] if src.args else None
    return LinkGraph(links, "fx", functional)


def _node_name(node: fx.Node) -> str:
    return node.target if isinstance(node.target, str) else node.target.__name__


def _is_shape_op(node: fx.Node) -> bool:
    if node.op == "call_method":
        return node.target in _SHAPE_METHODS
    if node.op == "call_function":
        return node.target in _SHAPE_FUNCTIONS
    return False


def _links_from_order(model: nn.Module, only: set[str] | None) -> list[Link]:
    leaves = [(n, m) for n, m in model.named_modules() if next(m.children(), None) is None]
    links: list[Link] = []
    for i, (name, module) in enumerate(leaves):
        if not is_activation(module) or (only is not None and name not in only):
            continue
        between: list[str] = []
        for prev_name, prev in reversed(leaves[:i]):
            if isinstance(prev, WEIGHT_TYPES):
                links.append(Link(prev_name, name, tuple(reversed(between))))
                break
            if not isinstance(prev, TRANSPARENT_TYPES):
                break
            between.append(prev_name)
    return links


def run_example(model: nn.Module, example_input: Any) -> None:
    """One forward pass of ``example_input`` (tensor or tuple of arguments) in eval mode without
    grad — no BatchNorm running-stat updates, no dropout draws — restoring train modes after."""
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.no_grad():
            model(*example_input) if isinstance(example_input, tuple) else model(example_input)
    finally:
        for m, training in modes.items():
            m.training = training


def _links_from_hooks(model: nn.Module, example_input: Any, only: set[str] | None) -> list[Link]:
    names = {id(m): n for n, m in model.named_modules()}
    # id(tensor) -> (tensor, layer, between): the tensor is kept so that its id stays unique.
    produced: dict[int, tuple[torch.Tensor, str, tuple[str, ...]]] = {}
    links: list[Link] = []

    def pre(mod: nn.Module, args: tuple) -> None:
        x = args[0] if args and isinstance(args[0], torch.Tensor) else None
        name = names[id(mod)]
        if x is not None and is_activation(mod) and id(x) in produced and (only is None or name in only):
            _, layer, between = produced[id(x)]
            links.append(Link(layer, name, between))

    def post(mod: nn.Module, args: tuple, out: Any) -> None:
        x = args[0] if args else None
        if not isinstance(out, torch.Tensor):
            return
        if out is x and not isinstance(mod, TRANSPARENT_TYPES):
            # An in-place op overwrote the layer's output: whoever reads this tensor object
            # from now on reads the activation's output, not the layer's.
            produced.pop(id(x), None)
        elif isinstance(mod, WEIGHT_TYPES):
            produced[id(out)] = (out, names[id(mod)], ())
        elif isinstance(mod, TRANSPARENT_TYPES) and x is not None and id(x) in produced:
            _, layer, between = produced[id(x)]
            produced[id(out)] = (out, layer, between + (names[id(mod)],))

    handles = []
    for m in model.modules():
        if next(m.children(), None) is None:  # leaves: the modules that compute
            handles.append(m.register_forward_pre_hook(pre))
            handles.append(m.register_forward_hook(post))
    try:
        run_example(model, example_input)
    finally:
        for h in handles:
            h.remove()
    return list(dict.fromkeys(links))
