"""What the suite knows about one activation: :class:`ActivationSpec`, one registry entry.

Everything that asks about an activation (the factory, config validation, ``swap_activations``,
the leaky-aware init, the probes, the remedies) reads it from the entry, so adding an activation
is one :func:`common.activations.register_activation` call and no edit anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, Optional, Union

import torch
from torch import nn

from common.activations.params import Check

#: ``rectifier``: piecewise linear through the origin with slope α below it (ReLU, LeakyReLU,
#: PReLU, ...): dying units, and the init gain sqrt(2/(1+α²)). ``smooth``: a hidden-unit
#: nonlinearity that is not (ELU, GELU, SiLU, ...): init gain from its second moment.
#: ``saturating``: bounded outputs, usually output squashers or gates (tanh, sigmoid, ...): not
#: swapped by default, and the remedies leave them alone.
Kind = Literal["rectifier", "smooth", "saturating"]
KINDS: tuple[str, ...] = ("rectifier", "smooth", "saturating")

#: Names that ``make_activation`` takes for every activation, so no entry may use them.
PLACEMENT_KEYS = ("channels", "dim")


def _no_check(activation: str, key: str, value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Param:
    """One keyword parameter of an activation: its default and the check a value must pass."""

    name: str
    default: Any
    check: Check = _no_check


@dataclass(frozen=True)
class ActivationSpec:
    """One activation: how to build it by name and how to read a module of its types.

    ``build(channels, dim, **params)`` gets every parameter, checked and with defaults filled
    in; ``None`` makes the entry recognise-only (torch modules a user's model may contain but
    configs cannot name, e.g. ``nn.ReLU6``). Readers take a module of one of ``types``:

    - ``alpha``: the negative slope the init of the layer feeding it should assume; required
      for, and only for, ``kind='rectifier'``;
    - ``gain``: the constant its output is multiplied by (None: 1);
    - ``zero_below``: whether its derivative is exactly 0 where the input is <= 0 (a bool, or a
      bool tensor of one value per unit). Give it only when the derivative is never 0 on
      positive inputs: the probes then count zero derivatives from signs alone; without it
      they differentiate a copy of the input;
    - ``unit_dim``: the dim indexing its units when the module knows (None: ask the layers
      around it);
    - ``placement(channels, dim)``: refuse a place it cannot work in (PReLU's per-channel slopes
      need dim 1), beyond the generic checks on ``channels`` and ``dim``.

    ``carries_bias``: the module holds the per-channel bias of the units itself, so the layer
    before it is built without one. Such a module exposes ``.bias`` (a Parameter or None),
    ``.channels`` and ``.dim``, and its entry has a ``bias`` parameter (a bool) switching it.
    ``swappable``: replaced by ``swap_activations`` by default (None: every kind but
    ``saturating``).
    """

    name: str
    types: tuple[type[nn.Module], ...]
    kind: Kind
    build: Optional[Callable[..., nn.Module]] = None
    params: tuple[Param, ...] = ()
    alpha: Optional[Callable[[nn.Module], float]] = None
    gain: Optional[Callable[[nn.Module], float]] = None
    zero_below: Optional[Callable[[nn.Module], Union[bool, torch.Tensor]]] = None
    unit_dim: Optional[Callable[[nn.Module], Optional[int]]] = None
    placement: Optional[Callable[[Optional[int], int], None]] = None
    carries_bias: bool = False
    swappable: Optional[bool] = None

    def __post_init__(self) -> None:
        # Entries are written by users too: refuse an inconsistent one when it is registered,
        # not when some consumer trips over it mid-training.
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"activation name must be an identifier such as 'leaky_relu' (got {self.name!r})")
        types = (self.types,) if isinstance(self.types, type) else tuple(self.types)
        if not types or not all(isinstance(t, type) and issubclass(t, nn.Module) for t in types):
            raise ValueError(f"activation '{self.name}': types must be nn.Module subclasses (got {self.types!r})")
        object.__setattr__(self, "types", types)
        object.__setattr__(self, "params", tuple(self.params))
        if self.kind not in KINDS:
            raise ValueError(f"activation '{self.name}': kind must be one of {', '.join(KINDS)} (got {self.kind!r})")
        if (self.kind == "rectifier") != (self.alpha is not None):
            raise ValueError(f"activation '{self.name}': an alpha reader is required for kind 'rectifier' "
                             "and only for it (the init treats activations with an α as rectifiers)")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names) or set(names) & set(PLACEMENT_KEYS):
            raise ValueError(f"activation '{self.name}': parameter names must be unique and not "
                             f"{' or '.join(PLACEMENT_KEYS)} (got {', '.join(names)})")
        for p in self.params:
            p.check(self.name, p.name, p.default)  # a default that fails its own check is a typo
        if self.carries_bias and (self.build is None or "bias" not in names):
            raise ValueError(f"activation '{self.name}': carries_bias needs a builder and a 'bias' parameter")
        if self.swappable is None:
            object.__setattr__(self, "swappable", self.kind != "saturating")

    @property
    def buildable(self) -> bool:
        """Whether ``make_activation`` and configs accept this name."""
        return self.build is not None

    def defaults(self) -> dict[str, Any]:
        """``{parameter: default}``."""
        return {p.name: p.default for p in self.params}
