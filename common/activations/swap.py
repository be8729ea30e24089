"""``swap_activations``: turn a user's own model into another activation, in place.

What it replaces: every *module* activation of the types in ``types`` (default
:func:`~common.activations.registry.swappable_types`: the registry's rectifiers and smooth
activations — ReLU, LeakyReLU, PReLU, ELU, GELU, SiLU, FusedLeakyReLU, ...; not Sigmoid/Tanh,
which are usually output squashers or gates). **Functional calls — ``F.relu(x)``,
``torch.relu``, ``x.relu()`` inside ``forward`` — are invisible to it, as they are to the
probes**: they are not modules, so there is nothing to replace or hook. When the model can be
traced with ``torch.fx`` such calls are detected and a warning lists them; rewrite them as
modules (``self.act = nn.ReLU()``) to make them swappable.

Which layer "feeds" an activation: the weight layer whose output reaches the activation's input
through nothing but norms, dropout, Identity or reshapes (the rule and how it is found are in
:mod:`common.activations.graph`: fx data flow when tracing works; a hooked forward pass of
``example_input`` when given, for what fx cannot see; otherwise the nearest preceding
Linear/Conv in registration order). Each feeding layer is re-initialised with the leaky-aware
Kaiming init for the *new* activation (:mod:`common.init`), its bias zeroed. Pass
``example_input`` for models fx cannot trace or that hide activations inside torch's composite
modules (``nn.TransformerEncoderLayer(activation=nn.ReLU())``).

Swapping to ``fused_leaky_relu`` (or any activation whose registry entry ``carries_bias``: the
rules below are written for the fused one): the new module's channel count and channel dim come
from the feeding layer (``out_features``/dim -1 for Linear, ``out_channels``/dim 1 for convs). A
bias is never added, only moved, so the parameter count does not change:

* layer → activation directly (or through ``nn.Identity``), used only there: the layer's bias (if
  it has one) moves into the FusedLeakyReLU and the layer becomes ``bias=False``;
* a norm (BatchNorm, LayerNorm, ...) in between: the norm's affine shift already is the bias in
  front of the activation, and the layer's own bias is cancelled by the normalisation anyway, so
  the FusedLeakyReLU gets no bias and the layer keeps its own (the "fused bias follows the BN"
  case: fusing it would only duplicate the norm's shift);
* no feeding layer, several of them (one module applied after several layers), dropout or a
  reshape in between, or ``bias=False`` passed: no bias in the FusedLeakyReLU.

Swapping *away from* a FusedLeakyReLU that holds a bias moves it back into its feeding layer
(which gets a ``bias`` Parameter again), adds it to the shift of a norm right before it
(``act(norm(x) + b)``: the same function, one redundant bias fewer), or, for fused → fused,
keeps it in the new module. Where none of that is possible it is dropped with a warning.

A bias only moves where fx tracing proved the path exclusive (the layer's output reaches only
this activation, nothing on the way used twice: see :class:`~common.activations.graph.Link`);
a residual ``y + f(y)`` would otherwise change meaning. Without fx (hooks, registration order)
a fused activation gets no bias and the layer keeps its own: the same parameters, the same
function, only the bias add is not fused.

Swap before building the optimizer and before attaching probes: parameters move (new PReLU
slopes, biases folded) and the old module's hooks go with it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from common.activations.graph import NORM_TYPES, Method, find_links
from common.activations.registry import (
    activation_entry,
    activation_spec,
    make_activation,
    own_bias,
    swappable_types,
    validate_activation,
)


@dataclass(frozen=True)
class SwapRecord:
    """What :func:`swap_activations` did to one activation module."""

    name: str  #: qualified name of the replaced module (its first registration)
    old: str  #: repr of the old module
    new: str  #: repr of the new module
    feeders: tuple[str, ...]  #: weight layers feeding it (re-initialised when ``reinit``)
    bias_moved: str | None  #: e.g. ``"fc1.bias -> act1.bias"`` when a bias changed owner


def _carries_bias(module: nn.Module) -> bool:
    spec = activation_spec(module)
    return spec is not None and spec.carries_bias


def _reference_tensor(*modules: nn.Module | None) -> torch.Tensor | None:
    for m in modules:
        if m is not None:
            for t in list(m.parameters()) + list(m.buffers()):
                return t
    return None


def swap_activations(
    model: nn.Module,
    name: str,
    *,
    types: tuple[type[nn.Module], ...] | None = None,
    reinit: bool = True,
    mode: Literal["fan_in", "fan_out"] = "fan_in",
    method: Method = "auto",
    example_input: Any = None,
    report: list[SwapRecord] | None = None,
    **params: Any,
) -> nn.Module:
    """Replace every activation module of ``types`` (None: the registry's swappable types) in
    ``model`` by ``make_activation(name, **params)``.

    In place; returns ``model`` (or the new activation when ``model`` itself is one). ``reinit``
    re-initialises the feeding layers for the new activation (``mode``; ``example_input`` makes
    conv fans exact, see :func:`common.init.leaky_init_`); without it weights are kept and only a
    bias move happens, so e.g. LeakyReLU(0.2) → fused_leaky_relu(alpha=0.2) computes the same
    function. Pass a list as ``report`` to receive one :class:`SwapRecord` per replaced module.
    ``channels`` and ``dim`` are inferred and may not be passed. A module shared at several places
    is replaced by one new module everywhere. Functional ``F.relu`` calls are not touched (see
    the module docstring); a warning lists those fx tracing finds.
    """
    # Lazy: common.init imports this package, so a top-level import would be circular.
    from common.init import conv_input_sizes, kaiming_for_

    spec = activation_entry(name)
    for key in ("channels", "dim"):
        if key in params:
            raise ValueError(f"swap_activations infers {key!r} from the feeding layers; do not pass it")
    validate_activation(name, params)  # before touching anything
    # An activation holding the bias itself only ever gets one moved into it, never a new one.
    want_bias = bool(params.pop("bias", True)) if spec.carries_bias else None
    if types is None:
        types = swappable_types()
    if isinstance(model, types):  # nothing to replace it in: hand the new module back
        extra = {"bias": False} if spec.carries_bias else {}
        return make_activation(name, **extra, **params)

    graph = find_links(model, method, example_input)
    if graph.functional:
        warnings.warn(
            "swap_activations: functional activation calls are not modules and stay as they are: "
            + ", ".join(graph.functional),
            stacklevel=2,
        )
    sizes = conv_input_sizes(model, example_input) if example_input is not None and reinit else {}
    modules = dict(model.named_modules())

    # Every (parent, attribute) through which each module is reachable: a shared module is
    # registered several times and must be replaced everywhere by the same new module.
    refs: dict[int, list[tuple[nn.Module, str]]] = {}
    for parent in model.modules():
        for attr, child in parent._modules.items():  # not named_children(): it drops aliases
            if child is not None:
                refs.setdefault(id(child), []).append((parent, attr))

    for qual, old in modules.items():
        if not isinstance(old, types):
            continue
        feeders = graph.feeders(qual)
        feeder = modules[feeders[0]] if len(feeders) == 1 else None
        link = graph.link(feeders[0], qual) if feeder is not None else None
        exclusive = link is not None and link.exclusive
        # the modules strictly between layer and activation, Identity aside
        between = [n for n in (link.between if link else ()) if not isinstance(modules.get(n), nn.Identity)]
        old_bias = own_bias(old)
        take_bias: tuple[str, torch.Tensor] | None = None  # (origin, value) for the new module
        from_feeder = False
        if spec.carries_bias:
            if feeder is not None:
                channels = feeder.out_features if isinstance(feeder, nn.Linear) else feeder.out_channels
                dim = -1 if isinstance(feeder, nn.Linear) else 1
            elif _carries_bias(old):  # from one bias-carrying module to another: keep its place
                channels, dim = old.channels, old.dim
            else:
                channels, dim = None, 1
            if want_bias and old_bias is not None:
                take_bias = (f"{qual}.bias", old_bias.detach())
            elif want_bias and exclusive and not between and feeder.bias is not None:
                take_bias = (f"{feeders[0]}.bias", feeder.bias.detach())
                from_feeder = True
            new = make_activation(name, channels=channels, dim=dim, bias=take_bias is not None, **params)
        else:
            new = make_activation(name, **params)
        ref = _reference_tensor(feeder, old)
        if ref is not None:
            new = new.to(ref.device)
            if ref.is_floating_point():
                new = new.to(ref.dtype)
        new.train(old.training)
        for parent, attr in refs[id(old)]:
            setattr(parent, attr, new)

        # Biases move, they are never created (a leaky and a fused model keep the same
        # parameters): into the new FusedLeakyReLU, or back out of an old one.
        moved = None
        if take_bias is not None:
            with torch.no_grad():
                new.bias.copy_(take_bias[1])
            moved = f"{take_bias[0]} -> {qual}.bias"
            if from_feeder:
                feeder.register_parameter("bias", None)  # the layer becomes bias=False
        elif old_bias is not None:
            norm = modules.get(between[-1]) if exclusive and between else None
            if exclusive and not between and feeder.bias is None:
                feeder.bias = nn.Parameter(old_bias.detach().clone())
                moved = f"{qual}.bias -> {feeders[0]}.bias"
            elif isinstance(norm, NORM_TYPES) and getattr(norm, "bias", None) is not None and norm.bias.shape == old_bias.shape:
                with torch.no_grad():  # act(norm(x) + b): b is the norm's shift plus b
                    norm.bias.add_(old_bias.to(norm.bias))
                moved = f"{qual}.bias -> {between[-1]}.bias (added)"
            else:
                warnings.warn(
                    f"swap_activations: the bias of {qual} ({type(old).__name__}) has no place to go "
                    "(no single feeding layer proved exclusive by fx tracing, or something other "
                    "than a norm in between) and is dropped",
                    stacklevel=2,
                )
        if reinit:
            for f in feeders:
                kaiming_for_(modules[f], new, mode, input_size=sizes.get(f))
            if getattr(new, "bias", None) is not None:
                with torch.no_grad():
                    new.bias.zero_()
        if report is not None:
            report.append(SwapRecord(qual, repr(old), repr(new), tuple(feeders), moved))
    return model
