"""Scores a generator against real images: FID/KID with a named extractor, the real-vs-real floor,
and the class histogram — shared by ``apps.gan.evaluate`` and the periodic FID during training.

Counts (recorded in every result): the reference is the *training* images (``num_real``; all of
them up to 50,000 unless ``eval.num_real``); ``num_fake`` generated images (default: as many as
the held-out images); the floor is the FID of ``num_fake`` *held-out* real images against the same
reference — what a perfect generator would score at these counts with this extractor. FID's bias
depends on the counts, so a FID is only comparable with its floor and with FIDs of equal counts.
"""

from __future__ import annotations

import os
import time
from typing import Any

import torch

from apps.gan.classifier import get_classifier, materialise
from apps.gan.data import ImageData, to_uint8
from apps.gan.metrics import Extractor, class_stats, classifier_extractor, fid, inception_extractor, kid, kid_subset_size
from apps.gan.sampling import generate
from common.progress import progress
from common.rng import torch_generator

MAX_REAL = 50_000


class Shards:
    """Splits work over the processes of ``accelerate launch`` (one process: everything here).

    Each process extracts features of a contiguous slice; :meth:`gather` concatenates the slices
    in rank order on every process, so all of them hold exactly what one process would compute.
    """

    def __init__(self, distributed: bool = False):
        self.rank, self.world, self.device = 0, 1, None
        if distributed and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from accelerate import PartialState

            state = PartialState(cpu=not torch.cuda.is_available())
            self.rank, self.world, self.device = state.process_index, state.num_processes, state.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def span(self, n: int) -> tuple[int, int]:
        per = -(-n // self.world)
        return min(n, self.rank * per), min(n, (self.rank + 1) * per)

    def gather(self, t: torch.Tensor) -> torch.Tensor:
        if self.world == 1:
            return t
        from accelerate.utils import gather_object

        return torch.cat(gather_object([t.cpu()]))


def _subset(n: int, k: int, seed: int) -> torch.Tensor:
    """``k`` of ``n`` indices, fixed by ``seed`` (all of them, in order, when k >= n)."""
    if k >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch_generator(seed, "gan.eval.subset"))[:k].sort().values


class Scorer:
    """Holds the extractor(s) and the real features; scores generators."""

    def __init__(self, eval_cfg: Any, data: ImageData, device: Any = "cpu", log: Any = print,
                 shards: Shards | None = None):
        self.cfg, self.data, self.device, self.log = eval_cfg, data, device, log
        self.shards = shards or Shards()
        name = eval_cfg.extractor
        if name == "auto":
            name = "classifier" if data.labelled else "inception"
        self.classifier: Extractor | None = None
        show = self.shards.is_main  # one progress bar, not one per process
        if data.labelled:  # the class histogram needs it even when FID uses Inception
            model, info = get_classifier(data, eval_cfg.classifier, eval_cfg.cache_dir, device, log, show)
            self.classifier = classifier_extractor(model, info, device)
        if name == "classifier":
            if self.classifier is None:
                get_classifier(data, eval_cfg.classifier, eval_cfg.cache_dir, device, log, show)  # raises
            self.extractor = self.classifier
        else:
            self.extractor = inception_extractor(eval_cfg.inception_weights, device)
        self._real: dict[int, torch.Tensor] = {}
        self._heldout: torch.Tensor | None = None

    @property
    def info(self) -> dict:
        return dict(self.extractor.info)

    def real_features(self, n: int = 0) -> torch.Tensor:
        """Features of ``n`` training images (0 = all, up to MAX_REAL), a fixed subset; cached."""
        total = len(self.data.train)
        k = min(total, n or self.cfg.num_real or MAX_REAL, MAX_REAL)
        if k not in self._real:
            idx = _subset(total, k, self.cfg.seed)
            lo, hi = self.shards.span(k)
            feats = []
            # a bar only where it takes a while: more than one chunk of images to decode and extract
            bar = progress(total=hi - lo, desc="features of real images", unit="img",
                           enabled=self.shards.is_main and k > 4096)
            for a in range(lo, max(hi, lo + 1), 4096):
                chunk = self.data.train.__getitems__(idx[a:min(hi, a + 4096)].tolist())[0]
                feats.append(self.extractor(chunk, self.cfg.batch_size)[0])
                bar.update(len(chunk))
            bar.close()
            self._real[k] = self.shards.gather(torch.cat(feats))
        return self._real[k]

    def _features(self, images: torch.Tensor) -> torch.Tensor:
        """Extractor features of ``images``, each process doing its slice."""
        lo, hi = self.shards.span(len(images))
        return self.shards.gather(self.extractor(images[lo:hi], self.cfg.batch_size)[0])

    def _probs(self, images: torch.Tensor) -> torch.Tensor:
        """Classifier probabilities of ``images``, each process doing its slice."""
        lo, hi = self.shards.span(len(images))
        return self.shards.gather(self.classifier(images[lo:hi], self.cfg.batch_size)[1])

    def _generate(self, g_eval: torch.nn.Module, n: int) -> torch.Tensor:
        """``n`` generated uint8 images (sample i is the same on any number of processes)."""
        lo, hi = self.shards.span(n)
        mine = to_uint8(generate(g_eval, hi - lo, self.cfg.seed, self.cfg.batch_size, self.device, offset=lo))
        return self.shards.gather(mine)

    def heldout(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Held-out images (uint8, at most MAX_REAL) and labels."""
        if self._heldout is None:
            ho = self.data.heldout
            if len(ho) > MAX_REAL:
                ho = ho.subset(_subset(len(ho), MAX_REAL, self.cfg.seed))
            self._heldout = materialise(ho, show=self.shards.is_main, desc="decode held-out images")
        return self._heldout

    def quick_fid(self, g_eval: torch.nn.Module, n: int, seed: int) -> float:
        """FID of ``n`` generated vs ``n`` training images (the periodic FID during training)."""
        fake = to_uint8(generate(g_eval, n, seed, self.cfg.batch_size, self.device))
        return fid(self.real_features(n), self.extractor(fake, self.cfg.batch_size)[0])

    def score(self, g_eval: torch.nn.Module) -> dict:
        """The full evaluation of an eval-mode generator (keys: docs/run-directory.md's gan schema and more)."""
        t0 = time.time()
        cfg = self.cfg
        ho_images, ho_labels = self.heldout()
        n_fake = cfg.num_fake or len(ho_images)
        n_gen = max(n_fake, cfg.num_class_samples if self.classifier is not None else 0)
        fake = self._generate(g_eval, n_gen)
        real = self.real_features()
        fake_feats = self._features(fake[:n_fake])
        n_floor = min(n_fake, len(ho_images))
        ho_feats = self._features(ho_images[:n_floor])
        size = kid_subset_size(cfg.kid_subset_size, len(real), n_floor)
        kid_mean, kid_std = kid(real, fake_feats, cfg.kid_subsets, size, cfg.seed)
        kid_floor, _ = kid(real, ho_feats, cfg.kid_subsets, size, cfg.seed)
        fid_value, floor = fid(real, fake_feats), fid(real, ho_feats)
        out: dict[str, Any] = {
            "extractor": self.info,
            "num_real": len(real), "num_fake": n_fake, "num_heldout": n_floor,
            "fid": fid_value, "kid_mean": kid_mean, "kid_std": kid_std,
            "kid_subsets": cfg.kid_subsets, "kid_subset_size": size,
            "fid_floor": floor, "kid_floor": kid_floor,
            "fid_over_floor": fid_value / floor if floor > 0 else None,
            "classes_covered": None, "class_kl": None, "confident_share": None,
        }
        if self.classifier is not None and ho_labels is not None:
            probs = self._probs(fake[:cfg.num_class_samples])
            train_labels = self.data.train.labels
            out.update(class_stats(probs, train_labels, self.data.num_classes))
            out["num_class_samples"] = len(probs)
            out["classifier"] = self.classifier.info
            real_probs = self._probs(ho_images)
            out["heldout_confident_share"] = float((real_probs.max(1).values >= 0.9).double().mean())
        out["eval_seconds"] = round(time.time() - t0, 2)
        return out
