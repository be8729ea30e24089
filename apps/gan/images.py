"""Image sets the GAN trains and evaluates on: uint8 tensors in memory or images decoded lazily.

Both kinds are map-style datasets whose ``__getitems__(indices)`` returns a whole batch
``(images uint8 [B, C, S, S], labels int64 [B] or None)``, so a DataLoader with
``batch_sampler`` and ``collate_fn=first`` fetches a step's batch in one call, in the training
process (``workers=0``) or in worker processes that decode files in parallel.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Sequence

import numpy as np
import torch
from PIL import Image

from common.errors import UserError


def to_square(img: Image.Image, size: int, channels: int) -> torch.Tensor:
    """``img`` as a uint8 tensor [channels, size, size]: colour converted, shorter side resized to
    ``size`` (PIL's antialiased bilinear, as torchvision's Resize), then centre cropped."""
    if img.mode not in ("L", "RGB"):
        # palette/alpha/16-bit images: through RGB first (alpha dropped, palette expanded)
        img = img.convert("RGBA").convert("RGB") if "A" in img.getbands() or img.mode == "P" else img.convert("RGB")
    img = img.convert("L" if channels == 1 else "RGB")
    w, h = img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    img = img.crop((left, top, left + size, top + size))
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def resize_tensor(images: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    """uint8 [N, C, H, W] → uint8 [N, channels, size, size] (antialiased bilinear, centre crop)."""
    out = []
    for start in range(0, len(images), 4096):  # chunks keep the float copy small
        x = images[start:start + 4096].float()
        if x.shape[1] != channels:
            x = x.mean(1, keepdim=True) if channels == 1 else x.expand(-1, 3, -1, -1)
        h, w = x.shape[-2:]
        if (h, w) != (size, size):
            scale = size / min(h, w)
            nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
            x = torch.nn.functional.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False,
                                                antialias=nh < h or nw < w)
            top, left = (nh - size) // 2, (nw - size) // 2
            x = x[..., top:top + size, left:left + size]
        out.append(x.round().clamp(0, 255).to(torch.uint8))
    return torch.cat(out) if out else torch.zeros(0, channels, size, size, dtype=torch.uint8)


class TensorImages:
    """Images held in memory as one uint8 tensor (digits, MNIST, CIFAR-10, ...)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None):
        assert images.dtype == torch.uint8 and images.dim() == 4
        self.images = images.contiguous()
        self.labels = None if labels is None else labels.long()

    def __len__(self) -> int:
        return len(self.images)

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.images[idx], None if self.labels is None else self.labels[idx]

    def __getitem__(self, i: int):
        return self.__getitems__([i])

    def subset(self, indices: torch.Tensor) -> "TensorImages":
        return TensorImages(self.images[indices], None if self.labels is None else self.labels[indices])

    def digest(self) -> str:
        """Content hash of the images and labels (the dataset fingerprint's main ingredient)."""
        h = hashlib.sha256(self.images.numpy().tobytes())
        if self.labels is not None:
            h.update(self.labels.numpy().astype(np.int64).tobytes())
        return h.hexdigest()


class LazyImages:
    """Images decoded on demand by ``load(key) -> PIL.Image`` (folders, CelebA, Hugging Face).

    ``load`` must be picklable (a module-level function or a class instance, not a lambda) so
    DataLoader workers started with ``spawn`` (macOS, Windows) can receive the set."""

    def __init__(self, keys: Sequence[Any], load: Callable[[Any], Image.Image], size: int, channels: int,
                 labels: torch.Tensor | None, identity: str = ""):
        self.keys = list(keys)
        self.load = load
        self.size, self.channels = size, channels
        self.labels = None if labels is None else labels.long()
        self.identity = identity

    def __len__(self) -> int:
        return len(self.keys)

    def _one(self, key: Any) -> torch.Tensor:
        try:
            img = self.load(key)
            return to_square(img, self.size, self.channels)
        except (OSError, ValueError, SyntaxError) as exc:
            # It passed the scan at start-up but not a full decode (e.g. a truncated JPEG).
            raise UserError(f"image '{key}' cannot be decoded ({exc}); remove or fix it "
                            "and re-run (the run resumes from its last checkpoint)") from None

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
        if len(indices) == 0:
            imgs = torch.zeros(0, self.channels, self.size, self.size, dtype=torch.uint8)
        else:
            imgs = torch.stack([self._one(self.keys[int(i)]) for i in indices])
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        return imgs, None if self.labels is None else self.labels[idx]

    def __getitem__(self, i: int):
        return self.__getitems__([i])

    def subset(self, indices: torch.Tensor) -> "LazyImages":
        return LazyImages([self.keys[int(i)] for i in indices], self.load, self.size, self.channels,
                          None if self.labels is None else self.labels[indices],
                          f"{self.identity}|subset:{hashlib.sha256(indices.numpy().tobytes()).hexdigest()[:16]}")

    def digest(self) -> str:
        """Hash of what identifies the images (paths and sizes, or dataset fingerprint) and labels,
        not their decoded pixels: decoding a large folder only to fingerprint it would be slow."""
        h = hashlib.sha256(self.identity.encode())
        h.update(f"{self.size}/{self.channels}/{len(self.keys)}".encode())
        if self.labels is not None:
            h.update(self.labels.numpy().astype(np.int64).tobytes())
        return h.hexdigest()


def first(batch: Any) -> Any:
    """DataLoader ``collate_fn`` for datasets whose ``__getitems__`` already returns a batch."""
    return batch


ImageSet = TensorImages | LazyImages
