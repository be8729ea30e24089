"""Per-layer accumulators of the probe statistics: raw sums and counts, kept on the device.

Everything data-dependent is summed into device tensors (no ``.item()`` per step); element counts
come from shapes and stay Python ints. Keeping raw sums/counts (never ratios) makes a window
summable across processes before the ratios are taken, which is what a DDP reduce needs.

Definitions (per activation layer, over every forward/backward on the window's sampled steps):

- pre-activation x: the tensor the activation receives (for FusedLeakyReLU, input + bias along
  ``.dim``); output h: what it returns;
- dead unit: x > 0 never happened for any element of that unit;
- ReDo score s_i = E|h_i| / mean_k E|h_k| (s = 0 for every unit if the layer's mean is 0);
  dormant when s_i <= tau;
- gradient sparsity: fraction of elements where the activation's local derivative f'(x) is
  exactly 0 (ReLU: x <= 0; LeakyReLU: only when α = 0 — counted from signs for the activations
  whose registry entry says where their derivative is zero, via autograd on a copy for the rest);
- act_rms: sqrt(mean h²); grad_rms: sqrt(mean (dL/dh)²), the gradient arriving at the output.
"""

from __future__ import annotations

import math
import warnings
from typing import Optional

import torch
from torch import nn

from common.activations.registry import activation_spec, own_bias
from common.hostcopy import to_device
from common.probes.topology import default_unit_dim


def _acc_dtype(t: torch.Tensor) -> torch.dtype:
    """Reduce half/bfloat16/float32 in float32 (cheap, enough for window sums), float64 as is."""
    return torch.float64 if t.dtype == torch.float64 else torch.float32


class LayerStats:
    """Sums for one activation layer over one window."""

    def __init__(self, model: str, layer: str, module: nn.Module, kind: str, unit_dim: Optional[int]):
        self.model, self.layer, self.module, self.kind = model, layer, module, kind
        self.spec = activation_spec(module)  # how to read its bias, slope and gain
        self.unit_dim = unit_dim  # None: decided from the first input's ndim
        self.units: Optional[int] = None  # fixed by the first call, kept across windows
        self.mismatch_warned = False
        self._skip_output = False  # the input of this call was skipped: skip its output too
        self.reset()

    def reset(self) -> None:
        self.pos: Optional[torch.Tensor] = None  # [units] count of x > 0
        self.abs_sum: Optional[torch.Tensor] = None  # [units] sum |h|
        self.zero: Optional[torch.Tensor] = None  # () elements with f'(x) == 0 (kinds not below)
        self.sq_out: Optional[torch.Tensor] = None  # () sum h²
        self.sq_grad: Optional[torch.Tensor] = None  # () sum (dL/dh)²
        self.n_pre = self.n_out = self.n_grad = self.calls = 0
        # Host-side shortcuts for the derivative-zero count: elements seen under the rule
        # "f'(x) == 0 exactly where x <= 0" (ReLU, LeakyReLU(0)) — their zeros are n - positives,
        # taken from ``pos`` when packing, so those kinds pay no kernel per call — and elements
        # whose derivative is identically 0 (gain 0).
        self.n_nonpos_rule = 0
        self.zero_host = 0
        self.pos_offset = 0.0  # positives loaded from a checkpoint (already settled in ``zero``)

    # -- helpers -----------------------------------------------------------------------------

    def _dims(self, t: torch.Tensor) -> tuple[int, list[int]]:
        if self.unit_dim is None:
            self.unit_dim = default_unit_dim(t.dim())
        d = self.unit_dim % t.dim() if t.dim() else 0
        return d, [i for i in range(t.dim()) if i != d]

    def _alloc(self, t: torch.Tensor, units: int) -> bool:
        """Allocate the sums on first use; False (skip this call) when the unit count differs,
        e.g. one activation module reused on tensors of different widths."""
        if self.units is None:
            self.units = units
        elif units != self.units:
            if not self.mismatch_warned:
                warnings.warn(f"probe {self.model}.{self.layer}: saw {units} units after {self.units}; "
                              "calls with the other count are skipped (set ProbeConfig.unit_dims, or give "
                              "each use its own module)", RuntimeWarning, stacklevel=4)
                self.mismatch_warned = True
            return False
        if self.pos is None:
            z = dict(dtype=torch.float64, device=t.device)
            self.pos, self.abs_sum = torch.zeros(units, **z), torch.zeros(units, **z)
            self.zero, self.sq_out, self.sq_grad = torch.zeros((), **z), torch.zeros((), **z), torch.zeros((), **z)
        elif self.pos.device != t.device:  # sums loaded from a checkpoint live on the CPU
            for name in ("pos", "abs_sum", "zero", "sq_out", "sq_grad"):  # inside a step: no blocking copy
                setattr(self, name, to_device(getattr(self, name), t.device))
        return True

    # -- observations (called from hooks) ------------------------------------------------------

    @torch.no_grad()
    def observe_input(self, x: torch.Tensor) -> None:
        """Count positive pre-activations per unit and exactly-zero local derivatives."""
        d, rest = self._dims(x)
        units = x.shape[d] if x.dim() else 1
        self._skip_output = not self._alloc(x, units)
        if self._skip_output:
            return
        bias = own_bias(self.module)
        if bias is not None:
            shape = [1] * x.dim()
            shape[d] = -1
            pos = x > (-bias.detach()).reshape(shape)  # x + b > 0 without materialising x + b
        else:
            pos = x > 0
        self.pos += pos.sum(dim=rest) if rest else pos
        self._count_zero_derivatives(x, pos, d)
        self.n_pre += x.numel()
        self.calls += 1

    def _count_zero_derivatives(self, x: torch.Tensor, pos: torch.Tensor, d: int) -> None:
        m, n, spec = self.module, x.numel(), self.spec
        if spec is not None and spec.zero_below is not None:  # f' != 0 wherever x > 0
            if spec.gain is not None and float(spec.gain(m)) == 0.0:
                self.zero_host += n
                return
            flat = spec.zero_below(m)
            if isinstance(flat, torch.Tensor):  # per-unit slopes (PReLU): zero where x <= 0 there
                if flat.numel() > 1:
                    shape = [1] * x.dim()
                    shape[d] = -1
                    flat = flat.reshape(shape)
                self.zero += ((~pos) & flat).sum()
            elif flat:  # zeros = n - positives, settled when packing (NaNs count as zeros)
                self.n_nonpos_rule += n
            return
        # Any other elementwise activation: its derivative on a detached copy, hooks bypassed.
        with torch.enable_grad():
            leaf = x.detach().clone().requires_grad_(True)
            (g,) = torch.autograd.grad(m.forward(leaf * 1).sum(), leaf)
        self.zero += (g == 0).sum()

    @torch.no_grad()
    def observe_output(self, h: torch.Tensor) -> None:
        """ReDo's per-unit sum of |h| and the sum of squares for act_rms."""
        if self.pos is None or self._skip_output:
            return
        d, rest = self._dims(h)
        a = h.abs()
        self.abs_sum += a.sum(dim=rest, dtype=_acc_dtype(a)) if rest else a
        self.sq_out += torch.linalg.vector_norm(h, dtype=_acc_dtype(h)).square()
        self.n_out += h.numel()

    @torch.no_grad()
    def observe_grad(self, g: torch.Tensor) -> None:
        """Sum of squares of dL/dh for grad_rms."""
        if self.sq_grad is None or g.shape[self.unit_dim % g.dim() if g.dim() else 0] != self.units:
            return
        self.sq_grad += torch.linalg.vector_norm(g, dtype=_acc_dtype(g)).square()
        self.n_grad += g.numel()

    # -- packing and reading -------------------------------------------------------------------

    def packed(self) -> Optional[torch.Tensor]:
        """All sums and counts as one float64 vector (units*2 + 7), or None when nothing was seen."""
        if self.pos is None:
            return None
        zero = self.zero + self.zero_host
        if self.n_nonpos_rule:
            # exact when every call of the window followed that rule (a layer's kind and slope
            # do not change mid-run); pos covers all calls of the window
            zero = zero + (self.n_nonpos_rule - (self.pos.sum() - self.pos_offset))
        counts = torch.tensor([self.n_pre, self.n_out, self.n_grad, self.calls],
                              dtype=torch.float64, device=self.pos.device)
        return torch.cat([self.pos, self.abs_sum, zero.view(1), self.sq_out.view(1), self.sq_grad.view(1), counts])

    def load_packed(self, v: torch.Tensor) -> None:
        """Inverse of :meth:`packed` (tensors stay on v's device until the next observation)."""
        units = (v.numel() - 7) // 2
        self.units = units
        self.pos, self.abs_sum = v[:units].clone(), v[units:2 * units].clone()
        self.zero, self.sq_out, self.sq_grad = (v[2 * units + i].clone() for i in range(3))
        self.n_nonpos_rule = self.zero_host = 0  # the loaded zero count is already settled
        self.pos_offset = float(self.pos.sum())
        self.n_pre, self.n_out, self.n_grad, self.calls = (int(x) for x in v[2 * units + 3:].tolist())

    @staticmethod
    def summarise(v: torch.Tensor, units: int, tau: float) -> tuple[dict, torch.Tensor, torch.Tensor]:
        """Record fields, dead mask and ReDo scores from a packed (possibly reduced) CPU vector."""
        pos, abs_sum = v[:units], v[units:2 * units]
        zero, sq_out, sq_grad, n_pre, n_out, n_grad, calls = v[2 * units:].tolist()
        dead = pos == 0
        mean_abs = float(abs_sum.sum())
        scores = abs_sum * units / mean_abs if mean_abs > 0 else torch.zeros_like(abs_sum)
        dormant = scores <= tau
        fields = {
            "units": units,
            "dead_frac": float(dead.double().mean()),
            "dormant_frac": float(dormant.double().mean()),
            "grad_sparsity": zero / n_pre if n_pre else None,
            "act_rms": math.sqrt(sq_out / n_out) if n_out else None,
            "grad_rms": math.sqrt(sq_grad / n_grad) if n_grad else None,
            "samples": int(calls),
        }
        return fields, dead, scores
