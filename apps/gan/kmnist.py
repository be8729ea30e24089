"""KMNIST (Kuzushiji-MNIST) from its release files: 28×28 grayscale cursive Japanese characters,
10 classes, white ink on black.

**Files** (the dataset's own format, as downloaded): ``kmnist-test-imgs.npz`` and
``kmnist-test-labels.npz`` — each an ``.npz`` whose ``arr_0`` holds uint8 images (N, 28, 28) or
integer labels 0–9 (N,) — and optionally ``kmnist-train-imgs.npz`` / ``kmnist-train-labels.npz``.

**Where**: ``data.root`` when it is set (anything but its default ``data``), else the folder in
``$LEAKYLAB_KMNIST_DIR``, else ``data`` — so an explicit ``data.root=`` wins over the variable.

**Split**: with the train files present, they train and the whole test split is held out (as
torchvision's MNIST is). With the test files alone, a class-balanced share of them is held out —
``data.heldout_fraction`` of every class (0.1: 100 per class, 1,000 of the 10,000), drawn from
``data.split_seed`` — and the rest trains.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.errors import UserError

ENV = "LEAKYLAB_KMNIST_DIR"
DEFAULT_ROOT = "data"  # DataConfig.root's default: a root left there yields to $LEAKYLAB_KMNIST_DIR
CLASSES = 10
SIDE = 28
FIX = (f"point data.root (or ${ENV}) at the folder holding KMNIST's release files kmnist-test-imgs.npz and "
       "kmnist-test-labels.npz")


def kmnist_dir(root: str) -> Path:
    """The folder KMNIST is read from (module docstring: ``data.root`` wins over the variable)."""
    if root and root != DEFAULT_ROOT:
        return Path(root)
    return Path(os.environ.get(ENV, "") or root or DEFAULT_ROOT)


def _array(path: Path) -> np.ndarray:
    """``arr_0`` of the release file ``path``; a missing or malformed file is a UserError."""
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise UserError(f"KMNIST file '{path}' {what}; {FIX}")
    if not zipfile.is_zipfile(path):
        raise UserError(f"KMNIST file '{path}' is not an .npz archive (a zip of .npy arrays); replace it with "
                        "the release file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "arr_0" not in npz.files:
                raise UserError(f"KMNIST file '{path}' has no array 'arr_0' (has: {', '.join(npz.files) or 'none'}); "
                                "replace it with the release file")
            return np.asarray(npz["arr_0"])
    except UserError:
        raise
    except Exception as exc:  # zip/zlib/npy format errors come in many types; all mean a damaged file
        raise UserError(f"KMNIST file '{path}' cannot be read ({type(exc).__name__}); replace it with the "
                        "release file") from None


def read_split(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images uint8 [N, 1, 28, 28] and labels int64 [N] of ``split`` ("train" or "test"), checked."""
    imgs_path, labels_path = folder / f"kmnist-{split}-imgs.npz", folder / f"kmnist-{split}-labels.npz"
    images, labels = _array(imgs_path), _array(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (SIDE, SIDE) or len(images) == 0:
        raise UserError(f"KMNIST file '{imgs_path}' holds {images.dtype} {tuple(images.shape)}, not uint8 "
                        f"(N, {SIDE}, {SIDE}) images; replace it with the release file")
    if not np.issubdtype(labels.dtype, np.integer) or labels.ndim != 1:
        raise UserError(f"KMNIST file '{labels_path}' holds {labels.dtype} {tuple(labels.shape)}, not integer "
                        "(N,) labels; replace it with the release file")
    if len(labels) != len(images):
        raise UserError(f"KMNIST file '{labels_path}' has {len(labels)} labels for the {len(images)} images of "
                        f"'{imgs_path}'; use the two files of one release")
    if labels.min() < 0 or labels.max() >= CLASSES:
        raise UserError(f"KMNIST file '{labels_path}' has labels outside 0–{CLASSES - 1} ({labels.min()}–"
                        f"{labels.max()}); replace it with the release file")
    return torch.from_numpy(images.copy())[:, None], torch.from_numpy(labels.astype(np.int64))


def balanced_split(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, held-out indices), both sorted: ``fraction`` of every class held out (at
    least one image, at most all but one), a draw fixed by ``seed``."""
    g = torch.Generator().manual_seed(seed)
    held = []
    for c in labels.unique(sorted=True):
        members = (labels == c).nonzero().flatten()
        k = min(len(members) - 1, max(1, round(len(members) * fraction)))
        held.append(members[torch.randperm(len(members), generator=g)[:k]])
    ho = torch.cat(held).sort().values
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[ho] = False
    return keep.nonzero().flatten(), ho


def load_kmnist(cfg: Any) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor], str]:
    """((train images, labels), (held-out images, labels), a note on the split) at 28×28, from
    the folder of ``cfg`` (a DataConfig)."""
    folder = kmnist_dir(cfg.root)
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise UserError(f"KMNIST folder '{folder}' {what}; {FIX}")
    test = read_split(folder, "test")
    if (folder / "kmnist-train-imgs.npz").exists() or (folder / "kmnist-train-labels.npz").exists():
        train = read_split(folder, "train")
        return train, test, (f"KMNIST from '{folder}': {len(train[0])} training images (train split), "
                             f"{len(test[0])} held out (test split)")
    tr, ho = balanced_split(test[1], cfg.heldout_fraction, cfg.split_seed)
    per_class = torch.bincount(test[1][ho], minlength=CLASSES).tolist()
    each = f"{per_class[0]} per class" if len(set(per_class)) == 1 else f"per class {per_class}"
    return (test[0][tr], test[1][tr]), (test[0][ho], test[1][ho]), (
        f"KMNIST from '{folder}' (test split only): {len(tr)} training images, {len(ho)} held out ({each})")
