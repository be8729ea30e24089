"""Bias warming: add γ(step) to every rectifier's pre-activation, annealed to exactly 0.

Adding γ to the pre-activation is adding γ to the unit's bias (the Linear/Conv bias, a norm's
shift, or a FusedLeakyReLU's own bias): every unit starts "warm", positive on more inputs, and
collects gradient while its weights are still young. Here the offset lives in a forward pre-hook
instead of in the parameters, so:

- the parameters are only ever changed by the optimizer: once γ reaches 0 the hooks are removed
  and the model is bit-for-bit the model that was trained (no add-then-subtract rounding);
- γ is a pure function of the step (:func:`warming_offset`), so a resumed run warms identically;
- checkpoints hold the trained parameters, never parameters with γ baked in.

The hooks are registered with ``prepend=True``, so they run before any other forward pre-hook:
the probes then see the warmed pre-activation, i.e. what the nonlinearity really receives.
"""

from __future__ import annotations

import math
from typing import Iterable, Literal, Union

from torch import nn
from torch.utils.hooks import RemovableHandle

from common.probes.topology import SATURATING, activation_kind, activation_layers

Schedule = Literal["linear", "cosine"]


def warming_offset(step: int, gamma: float, steps: int, schedule: Schedule = "linear") -> float:
    """γ(step): ``gamma`` at step 0, annealed to 0 at ``steps`` and exactly 0.0 from then on.

    linear: γ·(1 − s/steps); cosine: γ·(1 + cos(π·s/steps))/2.
    """
    if step >= steps or gamma == 0.0:
        return 0.0
    frac = max(step, 0) / steps
    if schedule == "linear":
        return gamma * (1.0 - frac)
    if schedule == "cosine":
        return gamma * 0.5 * (1.0 + math.cos(math.pi * frac))
    raise ValueError(f"unknown warming schedule {schedule!r} (linear or cosine)")


def warming_targets(models: Union[nn.Module, Iterable[nn.Module]]) -> list[nn.Module]:
    """The rectifier-family activation modules of the given model(s) (tanh/sigmoid outputs excluded)."""
    if isinstance(models, nn.Module):
        models = [models]
    out: list[nn.Module] = []
    for model in models:
        for _, m in activation_layers(model):
            if activation_kind(m) not in SATURATING and all(m is not o for o in out):
                out.append(m)
    return out


class BiasWarming:
    """Adds ``warming_offset(step, gamma, steps, schedule)`` to the input of each target activation.

    ``targets``: a model, several models, or an explicit list of activation modules. Call
    :meth:`set_step` before each step's forward; from ``steps`` on the hooks are gone.
    """

    def __init__(self, targets: Union[nn.Module, Iterable[nn.Module]], gamma: float, steps: int,
                 schedule: Schedule = "linear"):
        targets = [targets] if isinstance(targets, nn.Module) else list(targets)
        if not all(isinstance(t, nn.Module) for t in targets):
            raise TypeError("BiasWarming targets: a model or a list of models / activation modules")
        self.modules: list[nn.Module] = []
        for t in targets:
            for m in [t] if activation_kind(t) is not None else warming_targets(t):
                if all(m is not o for o in self.modules):
                    self.modules.append(m)
        self.gamma, self.steps, self.schedule = float(gamma), int(steps), schedule
        warming_offset(0, self.gamma, max(self.steps, 1), schedule)  # validates the schedule name
        self.offset = 0.0
        self._handles: list[RemovableHandle] = []

    def set_step(self, step: int) -> float:
        """Set γ for ``step`` (installing or removing the hooks as needed); returns γ."""
        self.offset = warming_offset(step, self.gamma, self.steps, self.schedule)
        if self.offset == 0.0:
            self.remove()
        elif not self._handles:
            for m in self.modules:
                self._handles.append(m.register_forward_pre_hook(self._hook, prepend=True))
        return self.offset

    def _hook(self, module: nn.Module, args: tuple):
        if not args:
            return None
        # a new tensor, so an in-place activation never writes into the caller's tensor
        return (args[0] + self.offset,) + tuple(args[1:])

    @property
    def active(self) -> bool:
        return bool(self._handles)

    def remove(self) -> None:
        """Remove every hook (the model is then exactly as trained)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

