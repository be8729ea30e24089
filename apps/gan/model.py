"""DCGAN generator and discriminator for square images of 8 to 128 pixels.

The shape is pytorch/examples' DCGAN generalised over the image size S = 2^k:

- **G**: z (nz×1×1) → ConvTranspose(4, 1, 0) to a 4×4 block of ``ngf·2^(k-3)`` channels, then
  ConvTranspose(4, 2, 1) layers halving the channels and doubling the side until ``ngf`` channels
  at S/2, then ConvTranspose(4, 2, 1) to the image and Tanh. Every hidden layer: [BatchNorm] →
  ``g_act``.
- **D**: the mirror: Conv(4, 2, 1) to ``ndf`` channels at S/2 (no BatchNorm, as in DCGAN), then
  Conv(4, 2, 1) layers doubling the channels down to 4×4, each [BatchNorm] → ``d_act``; a final
  Conv(4, 1, 0) gives one logit (the sigmoid lives in the loss).

For S = 64 this is exactly pytorch/examples' netG/netD. A conv has a bias only where no BatchNorm
follows it and the activation does not carry its own (``fused_leaky_relu``: the conv is then
built with ``bias=False`` and the fused module holds the bias) — pytorch/examples has no conv
biases at all; the difference is D's first conv and the BN-free variants, where the remedies
need a bias to act on. Layers are named ``conv1, bn1, act1, conv2, ...`` so probe records read
``G act2`` rather than ``main.5``.

Both networks keep their parameters' gradients in the parameters' own memory layout
(:func:`keep_grad_layout`), which DDP needs to all-reduce them in place.
"""

from __future__ import annotations

import math
import weakref
from collections import OrderedDict
from typing import Any, Literal

import torch
from torch import nn

from common.activations import carries_bias, make_activation
from common.init import dcgan_init_, leaky_init_


def num_stages(image_size: int) -> int:
    """Stride-2 layers between 4×4 and ``image_size`` (a power of two >= 8)."""
    k = int(math.log2(image_size))
    if 2**k != image_size or image_size < 8:
        raise ValueError(f"image_size must be a power of two >= 8 (got {image_size})")
    return k - 2


def _act(name: str, params: dict[str, Any], channels: int) -> nn.Module:
    return make_activation(name, channels=channels, **params)


def keep_grad_layout(module: nn.Module) -> None:
    """Make every gradient of ``module``'s parameters arrive with the parameter's own strides.

    D's last conv has one output channel: its weight is [1, C, 4, 4]. The R1 penalty's double
    backward computes that weight's gradient as the transpose of a [C, 1, 4, 4] tensor — the same
    shape and values, but the size-1 dimension's stride is 16 where the weight's is C·16. Autograd
    accepts that (a size-1 dimension's stride means nothing), DDP does not: it compares strides
    exactly with its bucket views, warns "Grad strides do not match bucket view strides … may
    impair performance" and copies that gradient on every such step. A hook on each parameter
    with a size-1 dimension (the only ones autograd may hand such a layout) gives the gradient the
    parameter's strides before it is accumulated, so every gradient matches its bucket; the copy
    is made only when the strides differ.
    """
    for p in module.parameters():
        if p.dim() > 1 and 1 in p.shape:
            p.register_hook(_layout_hook(p))


def _layout_hook(param: nn.Parameter):
    ref = weakref.ref(param)  # the hook lives on the parameter: no reference cycle

    def restore(grad: torch.Tensor) -> torch.Tensor:
        p = ref()
        if p is None or grad.stride() == p.stride():
            return grad
        return torch.empty_strided(p.shape, p.stride(), dtype=grad.dtype, device=grad.device).copy_(grad)

    return restore


class Generator(nn.Module):
    """DCGAN generator: ``forward(z)`` with z of shape (N, nz) or (N, nz, 1, 1) → images in [-1, 1]."""

    def __init__(self, image_size: int, channels: int, nz: int = 100, ngf: int = 64, act: str = "relu",
                 act_params: dict[str, Any] | None = None, batch_norm: bool = True, latent_classes: int = 0):
        super().__init__()
        params = dict(act_params or {})
        if not 0 <= latent_classes <= nz:
            raise ValueError(f"latent_classes must be in [0, nz={nz}], got {latent_classes}")
        self.nz, self.image_size, self.channels = nz, image_size, channels
        self.latent_classes = latent_classes
        n = num_stages(image_size)
        width = ngf * 2 ** (n - 1)
        bias = not batch_norm and not carries_bias(act, **params)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        c_in = nz
        for i in range(1, n + 1):
            first = i == 1
            layers[f"conv{i}"] = nn.ConvTranspose2d(c_in, width, 4, 1 if first else 2, 0 if first else 1, bias=bias)
            if batch_norm:
                layers[f"bn{i}"] = nn.BatchNorm2d(width)
            layers[f"act{i}"] = _act(act, params, width)
            c_in, width = width, width // 2
        layers["conv_out"] = nn.ConvTranspose2d(c_in, channels, 4, 2, 1, bias=False)
        layers["tanh"] = nn.Tanh()
        self.main = nn.Sequential(layers)
        keep_grad_layout(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 4:
            z = z.flatten(1)
        if self.latent_classes:
            z = discrete_code(z, self.latent_classes)
        return self.main(z[:, :, None, None])


def discrete_code(z: torch.Tensor, k: int) -> torch.Tensor:
    """Replace the first ``k`` entries of each z ~ N(0, I) by the one-hot of their argmax, scaled
    by √k (unit mean square per entry, like the Gaussian part).

    The argmax of k i.i.d. normals is uniform over k categories, so this is a discrete latent
    code drawn from the same noise — every sampler, checkpoint and seed stays as it is. A
    continuous latent has to pass *between* separate modes (digit classes), which an
    unconditional generator renders as ambiguous in-between images; a discrete code lets it
    jump between them instead (the idea behind InfoGAN's categorical code, here without its
    mutual-information loss).
    """
    code = torch.nn.functional.one_hot(z[:, :k].argmax(1), k).to(z.dtype) * math.sqrt(k)
    return torch.cat([code, z[:, k:]], 1)


class Discriminator(nn.Module):
    """DCGAN discriminator: ``forward(images)`` → one logit per image, shape (N,)."""

    def __init__(self, image_size: int, channels: int, ndf: int = 64, act: str = "leaky_relu",
                 act_params: dict[str, Any] | None = None, batch_norm: bool = True):
        super().__init__()
        params = dict(act_params or {})
        n = num_stages(image_size)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        c_in, width = channels, ndf
        for i in range(1, n + 1):
            norm = batch_norm and i > 1
            layers[f"conv{i}"] = nn.Conv2d(c_in, width, 4, 2, 1, bias=not norm and not carries_bias(act, **params))
            if norm:
                layers[f"bn{i}"] = nn.BatchNorm2d(width)
            layers[f"act{i}"] = _act(act, params, width)
            c_in, width = width, width * 2
        layers["conv_out"] = nn.Conv2d(c_in, 1, 4, 1, 0, bias=False)
        self.main = nn.Sequential(layers)
        keep_grad_layout(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1)


def build_models(model_cfg: Any, image_size: int, channels: int) -> tuple[Generator, Discriminator]:
    """G and D from a :class:`apps.gan.config.ModelConfig` (not yet initialised: see :func:`init_models`)."""
    g = Generator(image_size, channels, model_cfg.nz, model_cfg.ngf, model_cfg.g_act, model_cfg.g_act_params,
                  model_cfg.g_batch_norm, model_cfg.latent_classes)
    d = Discriminator(image_size, channels, model_cfg.ndf, model_cfg.d_act, model_cfg.d_act_params,
                      model_cfg.d_batch_norm)
    return g, d


def init_models(g: Generator, d: Discriminator, init: Literal["dcgan", "kaiming"]) -> None:
    """``dcgan``: N(0, 0.02) (pytorch/examples' weights_init); ``kaiming``: leaky-aware Kaiming with
    exact fans, computed from one example input per network (common.init.leaky_init_).

    ``init`` comes from ``ModelConfig.init``, whose type already refuses any other name."""
    if init == "kaiming":
        leaky_init_(g, example_input=torch.zeros(2, g.nz, 1, 1))
        leaky_init_(d, example_input=torch.zeros(2, g.channels, g.image_size, g.image_size))
        return
    dcgan_init_(g)
    dcgan_init_(d)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
