"""Turning a generator into images: noise, BatchNorm statistics for sampling, grids, files.

**Noise.** Sample ``i`` of a request with seed ``s`` always gets the same z (drawn on the CPU from
a generator seeded with ``s``, then moved), whatever the batch size or device, and without
touching the global RNG — so grids during training never change the training run, and the
evaluation of a model is a pure function of its weights and ``eval.seed``. Unlike the training
step's noise (apps.gan.step), this one stays a CPU draw on purpose: a model scored on a GPU must
see the same latent vectors as on a CPU, or the FIDs of runs evaluated on different machines would
not be comparable. It is drawn at sampling/evaluation time only, never inside a training step, and
reaches a GPU through pinned memory without a host sync (common.hostcopy).

**BatchNorm.** DCGAN's generator normalises with batch statistics while training. For sampling
we put it in eval mode with *standing statistics*: the running means/variances are re-estimated
for the weights being sampled (an exact average over ``STAT_BATCHES`` batches of fresh noise from
a fixed generator). That matters for the EMA generator, whose averaged weights never produced the
running statistics it inherits, and makes each sample independent of the rest of its batch.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import torch
from torch import nn

from common.hostcopy import to_device
from common.rng import torch_generator

STAT_BATCHES = 16
STAT_BATCH_SIZE = 256
STAT_SEED = 97


NOISE_BLOCK = 256


def noise(n: int, nz: int, seed: int, device: torch.device | str = "cpu", offset: int = 0) -> torch.Tensor:
    """z for samples ``offset .. offset+n-1`` of the stream ``seed`` (shape [n, nz]).

    The stream is cut in blocks of NOISE_BLOCK samples, block ``b`` drawn from a generator seeded
    with (seed, b): any slice costs only its own blocks and equals the same rows of any other slice.
    """
    if n <= 0:
        return torch.zeros(0, nz, device=device)
    first, last = offset // NOISE_BLOCK, (offset + n - 1) // NOISE_BLOCK
    blocks = [torch.randn(NOISE_BLOCK, nz, generator=torch_generator(seed, "gan.sample", b))
              for b in range(first, last + 1)]
    start = offset - first * NOISE_BLOCK
    return to_device(torch.cat(blocks)[start:start + n], device)


def has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


@torch.no_grad()
def sampling_copy(generator: nn.Module, device: torch.device | str | None = None) -> nn.Module:
    """An eval-mode copy of ``generator`` with standing BatchNorm statistics (module docstring)."""
    g = copy.deepcopy(generator)
    if device is not None:
        g.to(device)
    g.requires_grad_(False)
    if has_batch_norm(g):
        dev = next(g.parameters()).device
        bns = [m for m in g.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over the batches below
        g.train()
        gen = torch.Generator().manual_seed(STAT_SEED)
        for _ in range(STAT_BATCHES):
            g(to_device(torch.randn(STAT_BATCH_SIZE, g.nz, generator=gen), dev))
        for bn in bns:
            bn.momentum = 0.1
    g.eval()
    return g


@torch.no_grad()
def generate(g: nn.Module, n: int, seed: int, batch: int = 250, device: torch.device | str = "cpu",
             offset: int = 0) -> torch.Tensor:
    """``n`` images in [-1, 1] from eval-mode generator ``g`` (CPU float tensor)."""
    out = [torch.zeros(0, g.channels, g.image_size, g.image_size)]
    for start in range(0, n, batch):
        z = noise(min(batch, n - start), g.nz, seed, device, offset=offset + start)
        out.append(g(z).float().cpu())
    return torch.cat(out)


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None, padding: int = 2) -> Path:
    """Write images in [-1, 1] as one PNG grid, atomically (a reader never sees half a file)."""
    import torchvision.utils as vutils

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nrow = nrow or max(1, int(round(len(images) ** 0.5)))
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.png")
    vutils.save_image(images.float(), tmp, nrow=nrow, padding=padding, normalize=True, value_range=(-1, 1))
    os.replace(tmp, path)
    return path


def save_images(images: torch.Tensor, folder: str | Path, prefix: str = "sample") -> list[Path]:
    """One PNG per image (``prefix_00000.png`` ...)."""
    from PIL import Image

    from apps.gan.data import to_uint8

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    u8 = to_uint8(images)
    for i, img in enumerate(u8):
        arr = img.permute(1, 2, 0).numpy()
        pil = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
        p = folder / f"{prefix}_{i:05d}.png"
        pil.save(p)
        paths.append(p)
    return paths


@torch.no_grad()
def interpolate(g: nn.Module, seed: int, steps: int = 10, rows: int = 4, device: torch.device | str = "cpu") -> torch.Tensor:
    """``rows`` strips of ``steps`` images, each walking the latent space between two noise vectors
    (spherical interpolation, which keeps |z| typical of the Gaussian)."""
    ends = noise(2 * rows, g.nz, seed, device)
    a, b = ends[:rows], ends[rows:]
    t = torch.linspace(0, 1, steps, device=ends.device)
    an, bn = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    omega = torch.acos((an * bn).sum(1).clamp(-1 + 1e-7, 1 - 1e-7))[:, None]
    so = torch.sin(omega)
    zs = [(torch.sin((1 - ti) * omega) / so) * a + (torch.sin(ti * omega) / so) * b for ti in t]
    z = torch.stack(zs, 1).reshape(rows * steps, -1)
    return g(z).float().cpu()
