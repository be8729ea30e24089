"""Attach dead-unit probes to models in one call; detach leaving nothing behind.

Usage in a training loop::

    probes = attach_probes({"G": G, "D": D}, cfg.probes)
    for step in range(start, steps):
        probes.begin_step(step)          # True on sampled steps: hooks go on
        ... forward, backward, optimizer.step() ...
        probes.end_step()                # hooks come off
        if probes.ready():
            rundir.log_probes(probes.read())

Hooks exist only between ``begin_step`` and ``end_step`` of a sampled step, so unsampled steps
pay nothing, and a model copied (EMA, checkpoint) between steps carries no hook. Every forward of
an activation module in that interval counts (all microbatches, D on real and on fake, ...);
activation checkpointing re-runs forwards in backward and would count them twice.

Statistics stay on the device; ``read()`` packs all layers into one vector, optionally reduces it
(``read(reduce=lambda t: accelerator.reduce(t, "sum"))`` under DDP — every process must then call
``read`` at the same step), and syncs once. Definitions: common/probes/stats.py.
"""

from __future__ import annotations

import fnmatch
from typing import Callable, Optional

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from common.probes.config import ProbeConfig
from common.probes.stats import LayerStats
from common.probes.topology import activation_layers, activation_kind, infer_unit_dim


class Probes:
    """Per-layer dead/dormant/sparsity/RMS statistics of every activation module of some models."""

    def __init__(self, models: dict[str, nn.Module], cfg: ProbeConfig):
        self.cfg = cfg
        self.models = dict(models)
        self.layers: list[LayerStats] = []
        if cfg.enabled:
            for mname, model in self.models.items():
                for lname, module in activation_layers(model):
                    dim = self._unit_dim_override(mname, lname)
                    if dim is None:
                        dim = infer_unit_dim(model, lname)
                    self.layers.append(LayerStats(mname, lname, module, activation_kind(module), dim))
        self._handles: list[RemovableHandle] = []
        self._open = False  # inside a sampled step
        self._step = -1  # last sampled step
        self._sampled = 0  # sampled steps in the current window
        self._detached = False
        self.reads = 0  # windows read so far
        self.last_read_step = -1  # ``step`` of the last window read (remedies: are masks fresh?)
        self._masks: dict[str, dict[str, dict[str, torch.Tensor]]] = {}

    def _unit_dim_override(self, model: str, layer: str) -> Optional[int]:
        for pattern, dim in self.cfg.unit_dims.items():
            if fnmatch.fnmatchcase(f"{model}.{layer}", pattern) or fnmatch.fnmatchcase(layer, pattern):
                return dim
        return None

    # -- step protocol -------------------------------------------------------------------------

    def begin_step(self, step: int) -> bool:
        """Start optimisation step ``step``; returns whether it is sampled (hooks are on)."""
        self._remove_hooks()
        self._open = False
        if self._detached or not self.cfg.enabled or step % self.cfg.every != 0:
            return False
        for st in self.layers:
            self._handles.append(st.module.register_forward_pre_hook(self._pre_hook(st)))
            self._handles.append(st.module.register_forward_hook(self._post_hook(st)))
        self._open = True
        self._step = step
        return True

    def end_step(self) -> None:
        """Finish the step (call after backward): hooks come off, the window advances if sampled."""
        if self._open:
            self._sampled += 1
        self._open = False
        self._remove_hooks()

    def ready(self) -> bool:
        """A full window of ``cfg.window`` sampled steps is waiting to be read."""
        return self._sampled >= self.cfg.window

    def read(self, reduce: Optional[Callable[[torch.Tensor], torch.Tensor]] = None) -> list[dict]:
        """One record per (model, layer) seen in the window, then a fresh window.

        Keys: step (last sampled step), model, layer, kind, units, dead_frac, dormant_frac, tau,
        grad_sparsity, act_rms, grad_rms (None when no gradient reached it), samples (forward
        calls). ``reduce`` gets the packed float64 sums of all layers (e.g. a cross-process sum).
        """
        seen = [st for st in self.layers if st.pos is not None]
        records: list[dict] = []
        if seen:
            flat = torch.cat([st.packed() for st in seen])
            if reduce is not None:
                flat = reduce(flat)
            flat = flat.detach().cpu()  # the one host sync of the window
            offset = 0
            masks: dict[str, dict[str, dict[str, torch.Tensor]]] = {}
            for st in seen:
                size = 2 * st.units + 7
                fields, dead, scores = LayerStats.summarise(flat[offset:offset + size], st.units, self.cfg.tau)
                offset += size
                records.append({"step": self._step, "model": st.model, "layer": st.layer, "kind": st.kind,
                                "tau": self.cfg.tau, **fields})
                masks.setdefault(st.model, {})[st.layer] = {"dead": dead, "score": scores.float()}
            self._masks = masks
            self.reads += 1
            self.last_read_step = self._step
        for st in self.layers:
            st.reset()
        self._sampled = 0
        return records

    def masks(self, model: str | nn.Module) -> dict[str, dict[str, torch.Tensor]]:
        """Per-layer CPU tensors from the last ``read()``: ``dead`` (bool [units]) and ``score``
        (ReDo s_i [units]); a model may be given by name or by identity."""
        if isinstance(model, nn.Module):
            names = [n for n, m in self.models.items() if m is model]
            if not names:
                return {}
            model = names[0]
        return self._masks.get(model, {})

    # -- hooks ---------------------------------------------------------------------------------

    def _pre_hook(self, st: LayerStats):
        def hook(module: nn.Module, args: tuple):
            if self._open and args and isinstance(args[0], torch.Tensor):
                st.observe_input(args[0])
        return hook

    def _post_hook(self, st: LayerStats):
        def grad_hook(g: torch.Tensor) -> None:
            # fires during backward; ignore a backward that runs after end_step()
            if self._open:
                st.observe_grad(g)

        def hook(module: nn.Module, args: tuple, out):
            if not (self._open and isinstance(out, torch.Tensor)):
                return
            st.observe_output(out)
            if out.requires_grad:
                out.register_hook(grad_hook)
        return hook

    def _remove_hooks(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    # -- checkpointing -------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """The open window's sums, its position and the last masks, as tensors/ints/strings only
        (fits ``RunDir.save_checkpoint(extra=...)``), so a resumed run reports the same windows."""
        return {"step": self._step, "sampled": self._sampled, "reads": self.reads,
                "last_read_step": self.last_read_step,
                "layers": {f"{st.model}/{st.layer}": st.packed().cpu() for st in self.layers if st.pos is not None},
                "masks": {m: {l: dict(v) for l, v in layers.items()} for m, layers in self._masks.items()}}

    def load_state_dict(self, state: dict) -> None:
        self._step, self._sampled, self.reads = int(state["step"]), int(state["sampled"]), int(state["reads"])
        self.last_read_step = int(state.get("last_read_step", -1))
        for st in self.layers:
            st.reset()
            packed = state["layers"].get(f"{st.model}/{st.layer}")
            if packed is not None:
                st.load_packed(packed)
        self._masks = {m: {l: dict(v) for l, v in layers.items()} for m, layers in state["masks"].items()}

    # -- lifetime ------------------------------------------------------------------------------

    def detach(self) -> None:
        """Remove every hook; the probes stay readable but record nothing more."""
        self._remove_hooks()
        self._open = False
        self._detached = True

    def __enter__(self) -> "Probes":
        return self

    def __exit__(self, *exc) -> None:
        self.detach()


def attach_probes(models: dict[str, nn.Module], cfg: Optional[ProbeConfig] = None) -> Probes:
    """Probes on every activation module of each named model (see the module docstring)."""
    return Probes(models, cfg if cfg is not None else ProbeConfig())
