"""FID, KID and class statistics from feature vectors, through torchmetrics, in float64.

Features are extracted once per image set (:class:`Extractor`) and handed to torchmetrics'
``FrechetInceptionDistance`` / ``KernelInceptionDistance`` through their documented custom
``feature=`` module — here a pass-through, since the features already exist. So the real set's
features serve the FID, the KID and the real-vs-real floor without re-running the extractor, and
the statistics are accumulated in float64 (torchmetrics keeps FID sums in float64; we hand it
float64 features so KID's kernels are float64 too).
"""

from __future__ import annotations

import hashlib
import math
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from apps.gan.data import to_model_range
from common.errors import UserError
from common.rng import stream_seed


class Passthrough(nn.Module):
    """The ``feature=`` module for torchmetrics when the inputs already are feature vectors."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.double()


class Extractor:
    """Features (float64, [N, F]) and, for the classifier, class probabilities of uint8 images."""

    def __init__(self, info: dict, features: Callable[[torch.Tensor], torch.Tensor],
                 logits: Callable[[torch.Tensor], torch.Tensor] | None, device: Any, takes: str):
        self.info = info
        self._features, self._logits = features, logits
        self.device, self.takes = device, takes  # takes: "model_range" (floats in [-1, 1]) or "uint8_rgb"

    def _prep(self, images: torch.Tensor) -> torch.Tensor:
        if self.takes == "uint8_rgb":
            x = images.to(self.device)
            return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        return to_model_range(images, self.device)

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, batch: int = 250) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(features float64 [N, F], probabilities float64 [N, K] or None)`` of uint8 ``images``."""
        feats, probs = [], []
        for start in range(0, max(1, len(images)), batch):  # an empty set still gives [0, F] shapes
            x = self._prep(images[start:start + batch])
            feats.append(self._features(x).double().cpu())
            if self._logits is not None:
                probs.append(self._logits(x).double().softmax(-1).cpu())
        return torch.cat(feats), (torch.cat(probs) if probs else None)


def classifier_extractor(model: Any, info: dict, device: Any) -> Extractor:
    return Extractor(info, model.features, model, device, "model_range")


def inception_extractor(weights: str = "", device: Any = "cpu") -> Extractor:
    """torchmetrics' InceptionV3 (pool3, 2048 features); ``weights`` = a local weights file."""
    try:
        from torchmetrics.image.fid import NoTrainInceptionV3
        from torchmetrics.utilities.imports import _TORCH_FIDELITY_AVAILABLE
    except ImportError:  # pragma: no cover - torchmetrics is a dependency
        _TORCH_FIDELITY_AVAILABLE = False
    if not _TORCH_FIDELITY_AVAILABLE:
        raise UserError("eval.extractor=inception needs torch-fidelity, which is not installed: "
                        "pip install 'leakylab[inception]' (or use eval.extractor=classifier)")
    if weights and not Path(weights).is_file():
        raise UserError(f"eval.inception_weights '{weights}' does not exist")
    try:
        net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                 feature_extractor_weights_path=weights or None)
    except Exception as exc:  # no network for the default weights, a wrong file, ...
        raise UserError(f"InceptionV3 weights could not be loaded ({type(exc).__name__}); download "
                        "pt_inception-2015-12-05-6726825d.pth and set eval.inception_weights") from None
    net.to(device).eval()
    ident = hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:16] if weights else "torch-fidelity-default"
    info = {"name": "inception", "hash": ident, "heldout_accuracy": None, "features": 2048}
    return Extractor(info, lambda x: net(x).reshape(len(x), -1), None, device, "uint8_rgb")


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between two feature sets (torchmetrics, float64)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    if len(real) < 2 or len(fake) < 2:
        raise ValueError("FID needs at least 2 images on each side")
    m = FrechetInceptionDistance(feature=Passthrough(real.shape[1]), sync_on_compute=False)
    m.update(real.double(), real=True)
    m.update(fake.double(), real=False)
    return float(m.compute())


def kid(real: torch.Tensor, fake: torch.Tensor, subsets: int, subset_size: int, seed: int) -> tuple[float, float]:
    """KID mean and std over ``subsets`` random subsets (torchmetrics; subsets drawn from ``seed``)."""
    from torchmetrics.image.kid import KernelInceptionDistance

    with warnings.catch_warnings():  # "will save all extracted features": we hand it features already
        warnings.simplefilter("ignore", UserWarning)
        m = KernelInceptionDistance(feature=Passthrough(real.shape[1]), subsets=subsets, subset_size=subset_size,
                                    sync_on_compute=False)
    m.update(real.double(), real=True)
    m.update(fake.double(), real=False)
    with torch.random.fork_rng(devices=[]):  # KID draws its subsets from the global RNG
        torch.manual_seed(stream_seed(seed, "gan.eval.kid"))
        mean, std = m.compute()
    return float(mean), float(std)


def kid_subset_size(configured: int, n_real: int, n_fake: int) -> int:
    """``eval.kid_subset_size`` or min(1000, half the smaller count); always below both counts."""
    size = configured or min(1000, min(n_real, n_fake) // 2)
    return max(2, min(size, n_real - 1, n_fake - 1))


def class_stats(probs: torch.Tensor, real_labels: torch.Tensor, num_classes: int, confident: float = 0.9) -> dict:
    """Class histogram of generated images against the real training distribution.

    ``class_shares``: share of samples whose argmax is each class; ``classes_covered``: classes
    whose share is at least half their share among the real training images; ``class_kl``:
    KL(generated ‖ real) in nats (finite because every real class has mass; 0 = same histogram);
    ``confident_share``: share of samples with top probability ≥ ``confident``.
    """
    pred = probs.argmax(1)
    fake_p = torch.bincount(pred, minlength=num_classes).double() / max(1, len(pred))
    real_p = torch.bincount(real_labels, minlength=num_classes).double() / max(1, len(real_labels))
    real_p = real_p.clamp_min(1e-12)
    nz = fake_p > 0
    kl = float((fake_p[nz] * (fake_p[nz] / real_p[nz]).log()).sum())
    return {
        "classes_covered": int((fake_p >= 0.5 * real_p).sum()),
        "num_classes": num_classes,
        "class_kl": kl if math.isfinite(kl) else float("inf"),
        "confident_share": float((probs.max(1).values >= confident).double().mean()),
        "min_class_share": float(fake_p.min()),
        "class_shares": [round(float(v), 4) for v in fake_p],
    }
