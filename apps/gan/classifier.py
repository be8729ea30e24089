"""The ``classifier`` feature extractor: a small CNN trained on the dataset's own training images.

Inception features describe ImageNet photos; on 16×16 digits they mostly measure resizing
artefacts. A classifier trained on the real training images knows what the dataset's classes look
like, so its penultimate features make a FID that tracks sample quality there — and its softmax
gives the class histogram of generated samples. Such a FID is only comparable with FIDs from the
*same* extractor, so every output names it by hash.

**Architecture** (fixed; ``w`` = ``width``, ``F`` = ``features``, input C×S×S in [-1, 1]):
conv3×3(C→w) ReLU, conv3×3(w→w) ReLU, maxpool 2, conv3×3(w→2w) ReLU, conv3×3(2w→2w) ReLU,
adaptive average pool to 4×4, linear(32w→F) ReLU  ← the FID/KID features (times a fixed scale,
1 / their RMS over the training images, every k-th of them on sets over 10,000); dropout 0.3,
linear(F→classes).

**Recipe**: Adam(``lr``), ``steps`` batches of ``batch_size`` (a fresh permutation of the
training split per pass; at most ``epochs`` passes when that is set), learning rate halved at 50%
and 75% of the steps, per-image random translation by up to ``shift`` pixels (edge padding),
cross-entropy; init, order and augmentation from ``seed``. Counting steps rather than passes
keeps the cost flat in the dataset's size: 40 passes, sized for 1,348 digits, took 14 silent
minutes on a 10,000-image folder. Held-out accuracy is measured on the held-out split the GAN
never sees.

**The default, 2,000 steps of 64** (width 32, 128 features, one CPU thread, shared machine):
held-out accuracy on digits 16×16 (1,348 training images, 449 held out) 0.9933 at 500 steps and
at 840 (the old 40 passes), 0.9955 at 2,000; on KMNIST 32×32 (9,000 training images, 1,000 held
out) 0.878 at 500, 0.924 at 1,000, 0.957 at 2,000. A step costs ≈ 80 ms at 32×32 and ≈ 20–45 ms
at 16×16, so training takes ≈ 3 minutes at 32×32 on any dataset size, once per dataset.

**Cache**: ``<cache_dir>/classifier-<dataset fingerprint>-<recipe key>.safetensors`` plus a JSON
of its accuracy; the recipe key hashes every recipe field and :data:`ARCH_VERSION`, so a changed
recipe trains a new extractor instead of reusing a stale one. A file lock makes concurrent runs
(comparison cells) train it once. The hash is the SHA-256 of the weights file.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from safetensors.torch import load_model, save_model
from torch import nn

from apps.gan.data import ImageData, to_model_range
from apps.gan.images import ImageSet, LazyImages
from common.errors import UserError
from common.progress import progress
from common.rng import stream_seed, torch_generator

ARCH_VERSION = 4  # bump when the architecture or recipe code changes: it enters the cache key
EVAL_CHUNK = 500  # images per inference pass after training (feature scale, held-out accuracy)
SCALE_IMAGES = 10_000  # at most about this many training images set the feature scale: a flat cost


class SmallCNN(nn.Module):
    """The classifier (architecture in the module docstring); ``features(x)`` is the extractor."""

    def __init__(self, channels: int, num_classes: int, width: int = 32, features: int = 128):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(channels, w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(w, w, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),
            nn.Linear(2 * w * 16, features), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(features, num_classes))
        self.num_features = features
        # 1 / RMS of the features over the training images, set after training: FID/KID see
        # features of unit scale, so KID's cubic kernel (x·y/d + 1)³ stays in its useful range.
        self.register_buffer("feature_scale", torch.ones(()))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) * self.feature_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def materialise(images: ImageSet, chunk: int = 1024, show: bool = False,
                desc: str = "decode") -> tuple[torch.Tensor, torch.Tensor | None]:
    """All images (uint8) and labels of a set in memory; ``show``: a progress bar while files
    are decoded (a set already in memory needs none)."""
    xs, ys = [], []
    bar = progress(total=len(images), desc=desc, unit="img", enabled=show and isinstance(images, LazyImages))
    for start in range(0, len(images), chunk):
        x, y = images.__getitems__(list(range(start, min(start + chunk, len(images)))))
        xs.append(x)
        if y is not None:
            ys.append(y)
        bar.update(len(x))
    bar.close()
    return torch.cat(xs), (torch.cat(ys) if ys else None)


def _shift(x: torch.Tensor, shift: int, g: torch.Generator) -> torch.Tensor:
    """Translate each image by its own random offset in [-shift, shift]² (edge padding)."""
    if shift == 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (shift,) * 4, mode="replicate")
    offs = torch.randint(0, 2 * shift + 1, (n, 2), generator=g)
    out = torch.empty_like(x)
    for dy in range(2 * shift + 1):
        for dx in range(2 * shift + 1):
            sel = ((offs[:, 0] == dy) & (offs[:, 1] == dx)).nonzero().flatten()
            if len(sel):
                out[sel] = padded[sel, :, dy:dy + h, dx:dx + w]
    return out


def planned_steps(recipe: Any, n: int) -> int:
    """Steps the recipe trains on ``n`` images: ``steps``, capped at ``epochs`` passes when set."""
    per_epoch = max(1, n // recipe.batch_size)
    return min(recipe.steps, recipe.epochs * per_epoch) if recipe.epochs else recipe.steps


def _timings(model: SmallCNN, x: torch.Tensor, y: torch.Tensor, batch: int, device: Any) -> tuple[float, float]:
    """Seconds of one training step (a batch of ``batch``) and of one inference pass over all of
    ``x`` (an evaluation chunk), measured on a throwaway copy (the real model, optimiser and
    generators are untouched), for the "about N minutes" line."""
    probe = copy.deepcopy(model)
    opt = torch.optim.Adam(probe.parameters())
    chunk, x, y = to_model_range(x, device), to_model_range(x[:batch], device), y[:batch].to(device)

    def timed(fn: Any) -> float:
        t0 = time.perf_counter()
        fn()
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    def train_step() -> None:
        loss = F.cross_entropy(probe(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    with torch.random.fork_rng(devices=[]):
        steps = [timed(train_step) for _ in range(3)]  # the first pays for allocations: not counted
        probe.eval()
        with torch.no_grad():
            forward = [timed(lambda: probe.body(chunk)) for _ in range(2)]
    return min(steps[1:]), forward[1]


def about(seconds: float) -> str:
    """A rough duration for people: "about 20 s", "about 3 min"."""
    return f"about {max(1, round(seconds))} s" if seconds < 90 else f"about {round(seconds / 60)} min"


def train_classifier(data: ImageData, recipe: Any, device: torch.device | str = "cpu",
                     log: Any = print, show: bool = True, cached_as: str = "") -> tuple[SmallCNN, float]:
    """Train the classifier on ``data.train``; returns it (eval mode) and its held-out accuracy.
    ``show``: a progress bar; ``cached_as``: where the result will be kept (said in the log)."""
    x_train, y_train = materialise(data.train, show=show, desc="decode training images")
    x_ho, y_ho = materialise(data.heldout, show=show, desc="decode held-out images")
    channels = x_train.shape[1]
    g = torch_generator(recipe.seed, "gan.classifier.order")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(stream_seed(recipe.seed, "gan.classifier.init"))
        model = SmallCNN(channels, data.num_classes, recipe.width, recipe.features).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    n = len(x_train)
    per_epoch = max(1, n // recipe.batch_size)
    total = planned_steps(recipe, n)
    batch = min(recipe.batch_size, n)
    step_s, chunk_s = _timings(model, x_train[:EVAL_CHUNK], y_train, batch, device)
    x_scale = x_train[::-(-n // SCALE_IMAGES)]  # evenly spread over the set (folders are sorted by class)
    eta = step_s * total + chunk_s * (len(x_scale) + len(x_ho)) / min(n, EVAL_CHUNK)  # + feature scale, accuracy
    cache = f"; cached as {cached_as} for every later run and evaluation on this data" if cached_as else ""
    log(f"classifier extractor: training a {data.num_classes}-class CNN (width {recipe.width}, {recipe.features} "
        f"features) on {n} images of {data.name} for {total} steps of {recipe.batch_size}, {about(eta)} here, "
        f"once per dataset and recipe{cache}")
    t0 = time.time()
    model.train()
    perm = torch.empty(0, dtype=torch.long)
    for step in progress(range(total), desc="classifier", unit="step", enabled=show):
        i = step % per_epoch
        if i == 0:  # a fresh order each pass
            perm = torch.randperm(n, generator=g)
        idx = perm[i * recipe.batch_size:(i + 1) * recipe.batch_size]
        x = _shift(to_model_range(x_train[idx]), recipe.shift, g).to(device)
        for group in opt.param_groups:
            group["lr"] = recipe.lr * (0.5 ** ((step >= total // 2) + (step >= 3 * total // 4)))
        with torch.random.fork_rng(devices=[]):  # dropout masks from the recipe's seed too
            torch.manual_seed(stream_seed(recipe.seed, "gan.classifier.dropout", step))
            loss = F.cross_entropy(model(x), y_train[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        sq = sum(float(model.body(to_model_range(x_scale[i:i + EVAL_CHUNK], device)).square().sum())
                 for i in range(0, len(x_scale), EVAL_CHUNK))
        model.feature_scale.fill_(1.0 / max(1e-12, (sq / (len(x_scale) * recipe.features)) ** 0.5))
    acc = accuracy(model, x_ho, y_ho, device)
    log(f"classifier extractor: trained {total} steps ({total / per_epoch:.1f} passes) on {n} images in "
        f"{time.time() - t0:.0f}s; held-out accuracy {acc:.4f} ({len(x_ho)} images)")
    return model, acc


@torch.no_grad()
def accuracy(model: SmallCNN, x: torch.Tensor, y: torch.Tensor, device: Any, batch: int = EVAL_CHUNK) -> float:
    correct = 0
    for start in range(0, len(x), batch):
        logits = model(to_model_range(x[start:start + batch], device))
        correct += int((logits.argmax(1).cpu() == y[start:start + batch]).sum())
    return correct / max(1, len(x))


def cache_dir(configured: str = "") -> Path:
    """``eval.cache_dir``, else $LEAKYLAB_CACHE, else ``.cache/leakylab`` (relative to the working dir)."""
    return Path(configured or os.environ.get("LEAKYLAB_CACHE", "") or ".cache/leakylab")


def recipe_key(recipe: Any, num_classes: int, channels: int) -> str:
    text = json.dumps({"arch": ARCH_VERSION, "classes": num_classes, "channels": channels, **asdict(recipe)},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: no lock; a duplicate training only wastes time
        yield
        return
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def get_classifier(data: ImageData, recipe: Any, cache: str = "", device: Any = "cpu",
                   log: Any = print, show: bool = True) -> tuple[SmallCNN, dict]:
    """The cached classifier for ``data`` and ``recipe`` (trained now if absent, with a progress
    bar when ``show``) and its identity ``{"name": "classifier", "hash", "heldout_accuracy",
    "dataset", "features"}``."""
    if not data.labelled:
        raise UserError(f"{data.name} has no class labels, so the classifier extractor cannot be trained; "
                        "use eval.extractor=inception")
    channels = int(data.train.__getitems__([0])[0].shape[1])
    root = cache_dir(cache)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the extractor cache '{root}' ({exc.strerror}); set eval.cache_dir") from None
    stem = f"classifier-{data.fingerprint}-{recipe_key(recipe, data.num_classes, channels)}"
    weights, meta_file = root / f"{stem}.safetensors", root / f"{stem}.json"
    with _file_lock(root / f"{stem}.lock"):
        if not (weights.is_file() and meta_file.is_file()):
            model, acc = train_classifier(data, recipe, device, log, show, cached_as=str(weights))
            tmp = root / f".{stem}.tmp{os.getpid()}"
            save_model(model, str(tmp))
            os.replace(tmp, weights)
            meta = {"heldout_accuracy": acc, "dataset": data.name, "fingerprint": data.fingerprint,
                    "num_classes": data.num_classes, "recipe": asdict(recipe), "arch_version": ARCH_VERSION}
            tmp_meta = root / f".{stem}.json.tmp{os.getpid()}"
            tmp_meta.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
            os.replace(tmp_meta, meta_file)
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    model = SmallCNN(channels, data.num_classes, recipe.width, recipe.features)
    try:
        load_model(model, str(weights))
    except Exception as exc:  # a damaged cache file: say where it is so the user can delete it
        raise UserError(f"cached extractor '{weights}' is damaged ({type(exc).__name__}); delete it to retrain") from None
    model.to(device).eval()
    info = {"name": "classifier", "hash": file_hash(weights), "heldout_accuracy": float(meta["heldout_accuracy"]),
            "dataset": data.name, "features": recipe.features}
    return model, info
