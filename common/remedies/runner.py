"""``Remedies``: the one object a training loop calls to run the configured remedies.

Call pattern (probes first: their hooks must see this step's warmed pre-activations)::

    remedies = Remedies(cfg.remedies, {"G": G, "D": D}, {"G": opt_g, "D": opt_d}, probes, seed=cfg.seed)
    for step in range(start, steps):
        probes.begin_step(step)
        remedies.before_step(step)       # bias warming: γ(step)
        ... forward, backward, optimizer.step() ...
        probes.end_step()
        if probes.ready():
            rundir.log_probes(probes.read())
        remedies.after_step(step)        # kick / ReDo on the latest probe window, when due

Build the optimizers from :func:`common.remedies.param_groups` (``cfg.weight_decay``,
``cfg.decay_biases``). The constructor applies ``bias_init`` — construct it before loading a
checkpoint, which then overrides it. The thermal kick and ReDo fire on steps that are multiples
of their period, and only on a probe window read since they last acted (never twice on the same
masks); their noise is a pure function of (seed, step, layer), so a resumed run draws the same.
Under DDP every process must hold the same masks: read the probes with a cross-process sum.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence, Union

import torch
from torch import nn

from common.config import ConfigError
from common.init import bias_init_
from common.probes import Probes
from common.remedies.config import RemedyConfig
from common.remedies.kick import thermal_kick
from common.remedies.redo import redo_recycle
from common.remedies.sites import unit_sites
from common.remedies.warming import BiasWarming
from common.rng import torch_generator

OptimizerSet = Union[Mapping[str, torch.optim.Optimizer], Sequence[torch.optim.Optimizer], None]


class Remedies:
    """Bias init, bias warming, thermal kick and ReDo for a set of named models."""

    def __init__(self, cfg: RemedyConfig, models: Mapping[str, nn.Module], optimizers: OptimizerSet = None,
                 probes: Optional[Probes] = None, *, seed: int = 0):
        self.cfg, self.models, self.probes, self.seed = cfg, dict(models), probes, seed
        if optimizers is None:
            self.optimizers: list[torch.optim.Optimizer] = []
        else:
            self.optimizers = list(optimizers.values()) if isinstance(optimizers, Mapping) else list(optimizers)
        for key, on in (("kick_every", cfg.kick_every), ("redo_every", cfg.redo_every)):
            if on and (probes is None or not probes.cfg.enabled):
                raise ConfigError(key, "needs the probes enabled: they find the dead/dormant units")
        self.sites = {name: unit_sites(m) for name, m in self.models.items()}
        if cfg.bias_init is not None:
            for m in self.models.values():
                bias_init_(m, cfg.bias_init)
        self.warming = (BiasWarming(list(self.models.values()), cfg.warming_gamma, cfg.warming_steps,
                                    cfg.warming_schedule) if cfg.warming_gamma > 0 else None)
        # probes.last_read_step of the window each remedy last acted on: a step, not a count, so a
        # resumed run (probes state saved or not) neither repeats nor skips a window
        self._acted = {"kick": -1, "redo": -1}

    def before_step(self, step: int) -> float:
        """Set the bias-warming offset for ``step`` (returns γ, 0.0 when off or finished)."""
        return self.warming.set_step(step) if self.warming is not None else 0.0

    def after_step(self, step: int) -> dict[str, int]:
        """Run the kick / ReDo if due; returns ``{"kicked": n}`` / ``{"recycled": n}`` for what ran."""
        out: dict[str, int] = {}
        if self._due("redo", self.cfg.redo_every, step):
            n = 0
            for i, (name, model) in enumerate(self.models.items()):
                n += redo_recycle(model, self.optimizers, self.probes, tau=self.cfg.redo_tau,
                                  bias=self.cfg.bias_init or 0.0, sites=self.sites[name],
                                  generator=torch_generator(self.seed, "remedies.redo", step, i))
            out["recycled"] = n
        if self._due("kick", self.cfg.kick_every, step):
            n = 0
            for i, (name, model) in enumerate(self.models.items()):
                n += thermal_kick(model, self.probes, self.cfg.kick_std, sites=self.sites[name],
                                  generator=torch_generator(self.seed, "remedies.kick", step, i))
            out["kicked"] = n
        return out

    def _due(self, which: str, every: int, step: int) -> bool:
        if not every or step <= 0 or step % every != 0 or self.probes is None:
            return False
        if self.probes.last_read_step <= self._acted[which]:
            return False  # no window read since last time: the masks are stale
        self._acted[which] = self.probes.last_read_step
        return True

    def state_dict(self) -> dict:
        return {"acted": dict(self._acted)}

    def load_state_dict(self, state: dict) -> None:
        self._acted.update({k: int(v) for k, v in state["acted"].items()})

    def remove(self) -> None:
        """Remove the warming hooks (nothing else is attached)."""
        if self.warming is not None:
            self.warming.remove()
