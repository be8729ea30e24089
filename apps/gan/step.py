"""One DCGAN optimisation step, shared by the training loop and ``bench/gan_step.py``.

The step is pytorch/examples' DCGAN step — D on a real batch and on G(z) (detached), one D
update; then G through D, one G update — plus what leakylab adds around it: the probes' window,
the remedies, the EMA of G, device-side loss sums for logging and the divergence flag.

Nothing here syncs with the host or waits on a host→device copy: the latent noise and the
DiffAugment shifts are drawn on the model's device by generators there, the real batch is copied
through pinned memory (common.hostcopy), and the losses stay on the device until the log step.
On the CPU the draws are the numbers the named streams have always given; on a GPU they come
from CUDA's generator instead — other numbers for the same (seed, step), equally reproducible on
the same GPU model and PyTorch version, but not equal to a CPU run's (nor is its arithmetic).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from apps.gan.augment import random_offsets, shift_generator, translate
from apps.gan.data import to_model_range
from apps.gan.ema import EMA
from common.hostcopy import to_device
from common.rng import torch_generator


def step_noise(seed: int, step: int, n: int, nz: int, device: Any) -> torch.Tensor:
    """The global batch's latent vectors at ``step``: a pure function of (seed, step) and the
    kind of device they are drawn on (module docstring), drawn there: no host→device copy."""
    device = torch.device(device)
    return torch.randn(n, nz, generator=torch_generator(seed, "gan.noise", step, device=device), device=device)


def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str) -> torch.Tensor:
    """Discriminator loss on logits (computed in float32 under autocast)."""
    r, f = real_logits.float(), fake_logits.float()
    if kind == "hinge":
        return F.relu(1 - r).mean() + F.relu(1 + f).mean()
    # BCE(sigmoid(r), 1) + BCE(sigmoid(f), 0), as pytorch/examples, in the stable softplus form
    return F.softplus(-r).mean() + F.softplus(f).mean()


def r1_penalty(real_logits: torch.Tensor, real_inputs: torch.Tensor) -> torch.Tensor:
    """E‖∇ₓD(x)‖² over the batch (Mescheder et al. 2018), differentiable for D's update."""
    (grad,) = torch.autograd.grad(real_logits.float().sum(), real_inputs, create_graph=True)
    return grad.float().pow(2).flatten(1).sum(1).mean()


def g_loss(fake_logits: torch.Tensor, kind: str) -> torch.Tensor:
    """Generator loss: non-saturating −log D(G(z)), or hinge's −D(G(z))."""
    f = fake_logits.float()
    return -f.mean() if kind == "hinge" else F.softplus(-f).mean()


@dataclass
class Stepper:
    """What a step needs. ``G``/``D`` may be DDP-wrapped; ``g_raw``/``d_raw`` are the modules."""

    G: torch.nn.Module
    D: torch.nn.Module
    g_raw: torch.nn.Module
    d_raw: torch.nn.Module
    opt_g: Any
    opt_d: Any
    accelerator: Any
    loss: str = "nonsaturating"
    seed: int = 0
    batch_size: int = 64  # global
    ema: EMA | None = None
    probes: Any = None
    remedies: Any = None
    guard: Any = None
    augment_shift: int = 0  # DiffAugment translation of D's inputs, in pixels (0 = off)
    r1_gamma: float = 0.0  # R1 penalty weight on D's real inputs (0 = off)
    r1_every: int = 1  # lazy R1: every this many steps, scaled by it
    sums: torch.Tensor = field(default=None)  # type: ignore[assignment]  # loss_d, loss_g, D(x), D(G(z))

    def __post_init__(self) -> None:
        if self.sums is None:
            self.sums = torch.zeros(4, device=self.accelerator.device)

    def __call__(self, step: int, real_u8: torch.Tensor) -> None:
        acc = self.accelerator
        rank, world, dev = acc.process_index, acc.num_processes, acc.device
        per = self.batch_size // world
        real = to_model_range(to_device(real_u8, dev))
        z = step_noise(self.seed, step, self.batch_size, self.g_raw.nz, dev)[rank * per:(rank + 1) * per]
        if self.probes is not None:
            self.probes.begin_step(step)
        if self.remedies is not None:
            self.remedies.before_step(step)

        aug = lambda x, k: x  # noqa: E731 - identity unless augmenting
        if self.augment_shift > 0:
            # three draws for the global batch (D real, D fake, G), this process's slice of each
            offs = random_offsets(3 * self.batch_size, self.augment_shift, shift_generator(self.seed, step, dev))
            offs = offs.view(3, self.batch_size, 2)[:, rank * per:(rank + 1) * per]
            aug = lambda x, k: translate(x, offs[k], self.augment_shift)  # noqa: E731

        # D: maximise log D(x) + log(1 - D(G(z)))
        r1 = self.r1_gamma > 0 and step % self.r1_every == 0
        real_in = aug(real, 0)
        if r1:
            real_in = real_in.detach().requires_grad_(True)
        with acc.autocast():
            fake = self.G(z)
            out_real = self.D(real_in)
            out_fake = self.D(aug(fake.detach(), 1))
        loss_d = d_loss(out_real, out_fake, self.loss)
        if r1:
            loss_d = loss_d + r1_penalty(out_real, real_in) * (self.r1_gamma / 2 * self.r1_every)
        self.opt_d.zero_grad(set_to_none=True)
        acc.backward(loss_d)
        self.opt_d.step()

        # G: maximise log D(G(z)). Through the unwrapped D with its weights frozen: the gradient
        # reaches G without computing (or all-reducing) D's weight gradients, which pytorch/examples
        # computes and then throws away.
        self.d_raw.requires_grad_(False)
        with acc.autocast():
            out_g = self.d_raw(aug(fake, 2))
        loss_g = g_loss(out_g, self.loss)
        self.opt_g.zero_grad(set_to_none=True)
        acc.backward(loss_g)
        self.opt_g.step()
        self.d_raw.requires_grad_(True)
        if self.probes is not None:
            self.probes.end_step()
        if self.ema is not None:
            self.ema.update(self.g_raw, step)

        with torch.no_grad():  # device-side sums: no host sync until the log step
            self.sums += torch.stack([loss_d.detach(), loss_g.detach(),
                                      torch.sigmoid(out_real.detach().float()).mean(),
                                      torch.sigmoid(out_fake.detach().float()).mean()])
        if self.guard is not None:
            self.guard.update(loss_d, loss_g)
