"""Differentiable augmentation of D's inputs (DiffAugment's translation, Zhao et al. 2020).

On a small dataset (1,348 digits) the discriminator memorises the real images within a few
hundred steps; its loss goes to ~0 and G's gradient stops meaning "look more like the data".
Translating *every* image D sees — real and generated, in D's update and in G's — by a random
few pixels takes the memorisation away without teaching G to translate its samples, because the
operation is differentiable and applied to both sides alike. Off by default (pytorch/examples has
no augmentation); the digits config turns it on.

The shifts are a pure function of (seed, step) so a resumed run draws the same ones. They are
drawn on the device of the images they move (no host→device copy in the step): on the CPU the
stream's numbers as always, on a GPU those of CUDA's generator for the same stream.
"""

from __future__ import annotations

import torch

from common.rng import torch_generator


def shift_generator(seed: int, step: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator of step ``step``'s shifts, on ``device``."""
    return torch_generator(seed, "gan.augment", step, device=device)


def random_offsets(n: int, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """[n, 2] integer (row, column) shifts in [-max_shift, max_shift], on ``gen``'s device."""
    return torch.randint(-max_shift, max_shift + 1, (n, 2), generator=gen, device=gen.device)


def translate(x: torch.Tensor, offsets: torch.Tensor, max_shift: int, fill: float = -1.0) -> torch.Tensor:
    """Shift each image of ``x`` [B, C, H, W] by its row of ``offsets`` [B, 2] (each within
    ±``max_shift``), filling with ``fill`` (-1: the background of the [-1, 1] range).
    Differentiable in ``x``."""
    if max_shift <= 0:
        return x
    b, _, h, w = x.shape
    offs = offsets.to(x.device).t().reshape(2, b, 1, 1)
    padded = torch.nn.functional.pad(x, (max_shift,) * 4, value=fill)
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + max_shift - offs[0]).expand(b, h, w)
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + max_shift - offs[1]).expand(b, h, w)
    batch = torch.arange(b, device=x.device).view(b, 1, 1).expand(b, h, w)
    # advanced indexing gathers each image's window: result [B, H, W, C] → [B, C, H, W]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)
