"""Datasets of the GAN app, the fixed held-out split, and the data order of every step.

``load_data(cfg.data)`` returns the training and held-out image sets (uint8, C×S×S), the class
count where labels exist, and a fingerprint identifying the data (it keys the cached classifier
extractor). Sources: scikit-learn's bundled digits (offline; 8×8 upscaled to ``image_size``),
torchvision's MNIST, Fashion-MNIST, CIFAR-10 (held in memory) and CelebA (decoded lazily),
KMNIST's release files (apps/gan/kmnist.py), a folder of images, and a Hugging Face image dataset
(``datasets`` is imported only then).

**Data order** (exact resume, issue 7): :func:`step_indices` makes the global batch of step ``s``
a pure function of (seed, s): epoch = s // (n // batch), a permutation of the training set drawn
from a generator seeded with (seed, epoch), and the step's slice of it. Each process takes its
contiguous share (:func:`shard`), so a resumed run needs no loader state, and the global batch is
the same on any number of processes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from PIL import Image

from apps.gan.folder import folder_images, open_image, report_scan, scan_folder
from apps.gan.images import ImageSet, LazyImages, TensorImages, first, resize_tensor
from apps.gan.kmnist import load_kmnist
from common.errors import UserError
from common.rng import torch_generator

TORCHVISION = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10", "celeba": "CelebA"}


@dataclass
class ImageData:
    train: ImageSet
    heldout: ImageSet
    num_classes: int  # 0 when unlabelled
    name: str
    fingerprint: str
    notes: str = ""  # e.g. the folder scan's report of skipped files

    @property
    def labelled(self) -> bool:
        return self.num_classes >= 2 and self.train.labels is not None and self.heldout.labels is not None


# ---------------------------------------------------------------------------------------------
# sources


def _digits(size: int, channels: int) -> tuple[TensorImages, None, int]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] * (255.0 / 16.0)  # 0..16 → 0..255
    if size != 8:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    if channels == 3:
        x = x.expand(-1, 3, -1, -1)
    images = x.round().clamp(0, 255).to(torch.uint8)
    return TensorImages(images, torch.tensor(d.target)), None, 10


def _torchvision(cfg: Any) -> tuple[ImageSet, ImageSet, int]:
    import torchvision.datasets as tvd

    cls = getattr(tvd, TORCHVISION[cfg.source])
    pretty = TORCHVISION[cfg.source]

    def make(**kwargs: Any) -> Any:
        try:
            return cls(cfg.root, download=cfg.download, **kwargs)
        except Exception as exc:  # torchvision raises RuntimeError (not found), URLError, OSError, zip errors
            how = "it could not be downloaded" if cfg.download else "data.download is false"
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UserError(f"{pretty} is not under data.root='{cfg.root}' and {how} ({why}); fetch it on a "
                            "machine with network access or point data.root at a copy") from None

    if cfg.source == "celeba":
        sets = []
        for split in ("train", "test"):
            ds = make(split=split, target_type=[])
            folder = Path(ds.root) / ds.base_folder / "img_align_celeba"
            sets.append(LazyImages([folder / f for f in ds.filename], open_image, cfg.image_size, cfg.channels,
                                   None, identity=f"celeba:{split}:{len(ds)}"))
        return sets[0], sets[1], 0
    out = []
    for train in (True, False):
        ds = make(train=train)
        data = torch.as_tensor(np.asarray(ds.data))
        data = data[:, None] if data.dim() == 3 else data.permute(0, 3, 1, 2)  # MNIST N×H×W, CIFAR N×H×W×C
        labels = torch.as_tensor(np.asarray(ds.targets), dtype=torch.long)
        out.append(TensorImages(resize_tensor(data, cfg.image_size, cfg.channels), labels))
    return out[0], out[1], 10


def _kmnist(cfg: Any) -> tuple[TensorImages, TensorImages, int, str]:
    """KMNIST resized like torchvision's 28×28 sets; the last item says how it was split."""
    (x_tr, y_tr), (x_ho, y_ho), note = load_kmnist(cfg)
    return (TensorImages(resize_tensor(x_tr, cfg.image_size, cfg.channels), y_tr),
            TensorImages(resize_tensor(x_ho, cfg.image_size, cfg.channels), y_ho), 10, note)


def _hf_image(value: Any) -> Image.Image:
    """A Hugging Face image cell (PIL image, {'bytes'|'path'} dict, array) as a PIL image."""
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, dict):
        if value.get("bytes"):
            import io

            return Image.open(io.BytesIO(value["bytes"]))
        if value.get("path"):
            return Image.open(value["path"])
    arr = np.asarray(value)
    if arr.dtype != np.uint8:
        arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(1, 2, 0)
    return Image.fromarray(arr.squeeze(-1) if arr.ndim == 3 and arr.shape[-1] == 1 else arr)


class _HFRows:
    """Picklable row loader for DataLoader workers."""

    def __init__(self, ds: Any, column: str):
        self.ds, self.column = ds, column

    def __call__(self, i: int) -> Image.Image:
        return _hf_image(self.ds[int(i)][self.column])


def _hf(cfg: Any) -> tuple[LazyImages, int]:
    try:
        import datasets
    except ImportError:
        raise UserError("data.source=hf needs the Hugging Face 'datasets' package: pip install 'leakylab[hub]'") from None
    try:
        if cfg.path:
            ds = datasets.load_from_disk(cfg.path)
        elif cfg.hf_name:
            ds = datasets.load_dataset(cfg.hf_name, split=cfg.hf_split)
        else:
            raise UserError("data.source=hf needs data.path (a save_to_disk folder) or data.hf_name")
    except FileNotFoundError as exc:
        raise UserError(f"Hugging Face dataset '{cfg.path or cfg.hf_name}' not found ({exc}); check data.path / "
                        "data.hf_name") from None
    except (ConnectionError, OSError, ValueError) as exc:
        raise UserError(f"Hugging Face dataset '{cfg.path or cfg.hf_name}' could not be loaded "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if isinstance(ds, datasets.DatasetDict):
        if cfg.hf_split not in ds:
            raise UserError(f"data.hf_split '{cfg.hf_split}' is not a split of that dataset (has: {', '.join(ds)})")
        ds = ds[cfg.hf_split]
    if cfg.hf_image_column not in ds.column_names:
        raise UserError(f"data.hf_image_column '{cfg.hf_image_column}' is not a column (has: "
                        f"{', '.join(ds.column_names)})")
    labels, num_classes = None, 0
    if cfg.hf_label_column and cfg.hf_label_column in ds.column_names:
        labels = torch.as_tensor(np.asarray(ds[cfg.hf_label_column]), dtype=torch.long)
        feature = ds.features[cfg.hf_label_column]
        num_classes = int(getattr(feature, "num_classes", 0) or (int(labels.max()) + 1 if len(labels) else 0))
    identity = f"hf:{getattr(ds, '_fingerprint', '')}:{cfg.path or cfg.hf_name}:{cfg.hf_split}:{cfg.hf_image_column}"
    images = LazyImages(list(range(len(ds))), _HFRows(ds, cfg.hf_image_column), cfg.image_size, cfg.channels,
                        labels, identity=identity)
    return images, num_classes


# ---------------------------------------------------------------------------------------------
# the split and the loader


def heldout_split(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train indices, held-out indices): a permutation fixed by ``seed``, sorted within each part."""
    if n < 2:
        raise UserError(f"the dataset has {n} image(s); at least 2 are needed (one held out for evaluation)")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    k = min(n - 1, max(1, round(n * fraction)))
    return perm[k:].sort().values, perm[:k].sort().values


def load_data(cfg: Any) -> ImageData:
    """The training and held-out sets of ``cfg`` (a :class:`apps.gan.config.DataConfig`)."""
    notes = ""
    if cfg.source == "digits":
        full, heldout, num_classes = _digits(cfg.image_size, cfg.channels)
        name = f"sklearn digits {cfg.image_size}px"
    elif cfg.source in TORCHVISION:
        full, heldout, num_classes = _torchvision(cfg)
        name = f"{TORCHVISION[cfg.source]} {cfg.image_size}px"
    elif cfg.source == "kmnist":
        full, heldout, num_classes, notes = _kmnist(cfg)
        name = f"KMNIST {cfg.image_size}px"
    elif cfg.source == "folder":
        if not cfg.path:
            raise UserError("data.source=folder needs data.path=<folder of images>")
        scan = scan_folder(cfg.path)
        notes = report_scan(scan, cfg.path)
        full, heldout = folder_images(scan, cfg.path, cfg.image_size, cfg.channels), None
        num_classes = len(scan.classes)
        name = f"folder {cfg.path} {cfg.image_size}px"
    elif cfg.source == "hf":
        full, num_classes = _hf(cfg)
        heldout = None
        name = f"hf {cfg.path or cfg.hf_name} {cfg.image_size}px"
    else:  # the config's Literal makes this a bug, not user input
        raise ValueError(f"unknown data source {cfg.source!r}")
    if heldout is None:
        tr, ho = heldout_split(len(full), cfg.heldout_fraction, cfg.split_seed)
        full, heldout = full.subset(tr), full.subset(ho)
    if cfg.max_images and len(full) > cfg.max_images:
        full = full.subset(torch.arange(cfg.max_images))
    if len(full) == 0:
        raise UserError(f"{name}: the training split is empty")
    h = hashlib.sha256(f"{name}|{cfg.source}|{cfg.image_size}|{cfg.channels}".encode())
    h.update(full.digest().encode())
    h.update(heldout.digest().encode())
    return ImageData(full, heldout, num_classes, name, h.hexdigest()[:16], notes)


def step_indices(seed: int, step: int, n: int, batch_size: int) -> torch.Tensor:
    """The global batch of step ``step``: a pure function of (seed, step) (module docstring)."""
    per_epoch = n // batch_size
    epoch, i = divmod(step, per_epoch)
    g = torch_generator(seed, "gan.data.epoch", epoch)
    return torch.randperm(n, generator=g)[i * batch_size:(i + 1) * batch_size]


def shard(indices: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """This process's contiguous share of a global batch (batch size divisible by ``world``)."""
    per = len(indices) // world
    return indices[rank * per:(rank + 1) * per]


class StepBatches(torch.utils.data.Sampler):
    """Batch sampler yielding this process's indices for steps ``start .. stop-1``."""

    def __init__(self, seed: int, n: int, batch_size: int, start: int, stop: int, rank: int = 0, world: int = 1):
        self.seed, self.n, self.batch_size = seed, n, batch_size
        self.start, self.stop, self.rank, self.world = start, stop, rank, world
        self._epoch_cache: tuple[int, torch.Tensor] | None = None

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        per_epoch = self.n // self.batch_size
        for step in range(self.start, self.stop):
            epoch, i = divmod(step, per_epoch)
            if self._epoch_cache is None or self._epoch_cache[0] != epoch:  # one permutation per epoch
                g = torch_generator(self.seed, "gan.data.epoch", epoch)
                self._epoch_cache = (epoch, torch.randperm(self.n, generator=g))
            batch = self._epoch_cache[1][i * self.batch_size:(i + 1) * self.batch_size]
            yield shard(batch, self.rank, self.world).tolist()


def batch_loader(images: ImageSet, sampler: StepBatches, workers: int) -> torch.utils.data.DataLoader:
    """A DataLoader yielding ``(uint8 images, labels)`` per step, in step order."""
    return torch.utils.data.DataLoader(images, batch_sampler=sampler, collate_fn=first, num_workers=workers,
                                       generator=torch.Generator().manual_seed(0),  # not the global RNG
                                       persistent_workers=False, pin_memory=False)


def to_model_range(images: torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 [0, 255] → float [-1, 1] on ``device`` (the Tanh range of G's output)."""
    x = images.to(device, non_blocking=True) if device is not None else images
    return x.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] → uint8 [0, 255] (for files and for feeding the extractor like real data)."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
