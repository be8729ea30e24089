"""The activation registry: every question about an activation is answered from its entry.

By name (configs, model code): :func:`make_activation`, :func:`validate_activation`,
:func:`check_activation_name`, :func:`activation_params`, :func:`carries_bias`. By module (a
user's model, the init, the probes, the remedies): :func:`activation_spec`, :func:`is_activation`,
:func:`activation_alpha`, :func:`activation_gain`, :func:`own_bias`. The entries that come
with the suite are in :mod:`common.activations.builtin`; a user adds one with
:func:`register_activation` and every consumer sees it::

    register_activation("shifted_relu", types=(ShiftedReLU,), kind="rectifier",
                        build=lambda channels, dim, alpha: ShiftedReLU(alpha),
                        params=(Param("alpha", 0.1, nonnegative),), alpha=lambda m: m.alpha)

``channels`` and ``dim`` are accepted for every name so that model code can call
``make_activation(name, channels=C)`` uniformly; elementwise activations ignore them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Callable, Iterator, Optional, Union

import torch
from torch import nn

from common.activations.builtin import BUILTIN
from common.activations.params import placement as _check_placement
from common.activations.spec import ActivationSpec, Kind, Param

_BY_NAME: dict[str, ActivationSpec] = {}
_BY_TYPE: dict[type, ActivationSpec] = {}


class NameView(Sequence):
    """The registered names passing ``keep``, in registration order, always current: configs
    bind it at import time and still see activations registered later."""

    def __init__(self, keep: Callable[[ActivationSpec], bool]) -> None:
        self._keep = keep

    def _names(self) -> tuple[str, ...]:
        return tuple(n for n, s in _BY_NAME.items() if self._keep(s))

    def __getitem__(self, i):  # type: ignore[override]
        return self._names()[i]

    def __len__(self) -> int:
        return len(self._names())

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __contains__(self, name: object) -> bool:
        spec = _BY_NAME.get(name) if isinstance(name, str) else None
        return spec is not None and self._keep(spec)

    def __repr__(self) -> str:
        return repr(self._names())


#: Every name :func:`make_activation` accepts, in a stable order (configs validate against it).
ACTIVATIONS = NameView(lambda s: s.buildable)
#: Kind names (as the probes report them) of saturating activations: no dead-unit story.
SATURATING = NameView(lambda s: s.kind == "saturating")


# -- registering ------------------------------------------------------------------------------------


def register_activation(
    name: str,
    *,
    types: Union[type[nn.Module], Sequence[type[nn.Module]]],
    kind: Kind,
    build: Optional[Callable[..., nn.Module]] = None,
    params: Sequence[Param] = (),
    alpha: Optional[Callable[[nn.Module], float]] = None,
    gain: Optional[Callable[[nn.Module], float]] = None,
    zero_below: Optional[Callable[[nn.Module], Union[bool, torch.Tensor]]] = None,
    unit_dim: Optional[Callable[[nn.Module], Optional[int]]] = None,
    placement: Optional[Callable[[Optional[int], int], None]] = None,
    carries_bias: bool = False,
    swappable: Optional[bool] = None,
) -> ActivationSpec:
    """Add one activation (the fields are those of :class:`ActivationSpec`); returns its entry.

    From then on ``make_activation(name)`` builds it (when ``build`` is given), configs accept
    it, ``swap_activations`` can swap to and from it, the init reads its α and gain, and the
    probes report its layers under ``name``. A name or a module type already registered is
    refused: remove the old entry first with :func:`unregister_activation`.
    """
    spec = ActivationSpec(name, types, kind, build=build, params=tuple(params), alpha=alpha, gain=gain,  # type: ignore[arg-type]
                          zero_below=zero_below, unit_dim=unit_dim, placement=placement,
                          carries_bias=carries_bias, swappable=swappable)
    _add(spec)
    return spec


def _add(spec: ActivationSpec) -> None:
    if spec.name in _BY_NAME:
        raise ValueError(f"activation '{spec.name}' is already registered")
    taken = [f"{t.__name__} (by '{_BY_TYPE[t].name}')" for t in spec.types if t in _BY_TYPE]
    if taken:
        raise ValueError(f"activation '{spec.name}': module type already registered: {', '.join(taken)}")
    _BY_NAME[spec.name] = spec
    for t in spec.types:
        _BY_TYPE[t] = spec


def unregister_activation(name: str) -> ActivationSpec:
    """Remove the entry ``name`` (a test's own activation, or one to register differently)."""
    spec = _BY_NAME.pop(name, None)
    if spec is None:
        raise ValueError(f"activation '{name}' is not registered")
    for t in spec.types:
        del _BY_TYPE[t]
    return spec


def activation_types() -> tuple[type[nn.Module], ...]:
    """Every module type :func:`is_activation` recognises."""
    return tuple(_BY_TYPE)


def swappable_types() -> tuple[type[nn.Module], ...]:
    """The module types ``swap_activations`` replaces by default: rectifiers and smooth hidden
    activations. Sigmoid, Tanh, Hardtanh, ... are left out on purpose: in real models they are
    output squashers (DCGAN's generator ends in Tanh) or gates, and replacing them breaks it."""
    return tuple(t for t, s in _BY_TYPE.items() if s.swappable)


# -- by name ----------------------------------------------------------------------------------------


def activation_entry(name: str) -> ActivationSpec:
    """The entry of the buildable activation ``name``; ValueError listing them when unknown."""
    spec = _BY_NAME.get(name) if isinstance(name, str) else None
    if spec is None or not spec.buildable:
        raise ValueError(f"unknown activation {name!r}; allowed: {', '.join(ACTIVATIONS)}")
    return spec


def check_activation_name(name: str) -> str:
    """Return ``name`` if it is in :data:`ACTIVATIONS`, else raise ValueError listing them."""
    return activation_entry(name).name


def activation_params(name: str) -> tuple[str, ...]:
    """The keyword parameters ``name`` accepts besides ``channels`` and ``dim``."""
    return tuple(p.name for p in activation_entry(name).params)


def _resolve(spec: ActivationSpec, params: Any) -> dict[str, Any]:
    """Every parameter of ``spec``: the given ones checked, the others at their defaults."""
    if not isinstance(params, Mapping):
        raise ValueError(f"activation '{spec.name}': parameters must be a mapping (got {params!r})")
    allowed = [p.name for p in spec.params]
    unknown = sorted(str(k) for k in params if k not in allowed)
    if unknown:
        raise ValueError(f"activation {spec.name!r} got unknown parameter(s) {', '.join(unknown)}; "
                         f"allowed: {', '.join(allowed + ['channels', 'dim'])}")
    return {p.name: p.check(spec.name, p.name, params[p.name]) if p.name in params else p.default
            for p in spec.params}


def _place(spec: ActivationSpec, channels: Optional[int], dim: int) -> None:
    _check_placement(spec.name, channels, dim)
    if spec.placement is not None:
        spec.placement(channels, dim)


def validate_activation(
    name: str, params: Mapping[str, Any], *, channels: Optional[int] = None, dim: Optional[int] = None
) -> None:
    """Check a name and its parameters as a config gives them, without building anything.

    Raises ValueError naming the activation and the parameter. Checks of where the module
    goes (``channels`` along ``dim``, e.g. PReLU's per-channel slopes need dim 1) run only when
    ``channels`` or ``dim`` is given: a config usually does not know them.
    """
    spec = activation_entry(name)
    _resolve(spec, params)
    if channels is not None or dim is not None:
        _place(spec, channels, 1 if dim is None else dim)


def make_activation(name: str, *, channels: Optional[int] = None, dim: int = 1, **params: Any) -> nn.Module:
    """Build the activation module called ``name`` (parameters: :mod:`common.activations.builtin`).

    ``channels`` is the size of the channel dimension ``dim`` of the tensors it will see: PReLU
    uses it for per-channel slopes, ``fused_leaky_relu`` for its bias; the others ignore it.
    Unknown names, unknown parameters and impossible values raise ValueError.
    """
    spec = activation_entry(name)
    resolved = _resolve(spec, params)
    _place(spec, channels, dim)
    return spec.build(channels, dim, **resolved)  # type: ignore[misc]


def carries_bias(name: str, **params: Any) -> bool:
    """Whether activation ``name`` (with these parameters) holds the per-channel bias itself.

    True for ``fused_leaky_relu`` (unless ``bias=False``): the layer before it must then be built
    with ``bias=False`` so that a leaky and a fused-leaky model have the same parameters.
    """
    spec = activation_entry(name)
    return spec.carries_bias and bool(params.get("bias", spec.defaults()["bias"]))


# -- by module --------------------------------------------------------------------------------------


def activation_spec(module: Optional[nn.Module]) -> Optional[ActivationSpec]:
    """The entry recognising ``module`` (its own class first, then its bases), or None."""
    if module is None:
        return None
    for cls in type(module).__mro__:
        spec = _BY_TYPE.get(cls)
        if spec is not None:
            return spec
    return None


def is_activation(module: nn.Module) -> bool:
    """True for the elementwise nonlinearity modules some entry recognises."""
    return activation_spec(module) is not None


def activation_alpha(module: Optional[nn.Module]) -> Optional[float]:
    """Negative slope α the init of the layer *feeding* ``module`` should assume.

    0 for ReLU/ReLU6, α for LeakyReLU and FusedLeakyReLU, the initial slope for PReLU (its
    ``init`` value, not whatever training made of it: re-initialising restarts training), the
    mean of the range for RReLU, and None for activations that are not piecewise linear through
    the origin (ELU, GELU, sigmoid, tanh, ...) or when ``module`` is None.
    """
    spec = activation_spec(module)
    return None if spec is None or spec.alpha is None else float(spec.alpha(module))  # type: ignore[arg-type]


def activation_gain(module: Optional[nn.Module]) -> float:
    """The constant the module multiplies its output by (``FusedLeakyReLU.gain``), else 1."""
    spec = activation_spec(module)
    return 1.0 if spec is None or spec.gain is None else float(spec.gain(module))  # type: ignore[arg-type]


def own_bias(module: Optional[nn.Module]) -> Optional[torch.Tensor]:
    """The per-channel bias an activation module holds itself (``FusedLeakyReLU``), else None."""
    spec = activation_spec(module)
    return getattr(module, "bias", None) if spec is not None and spec.carries_bias else None


for _spec in BUILTIN:
    _add(_spec)
