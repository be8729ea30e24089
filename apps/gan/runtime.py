"""What train, sample and evaluate share: the app name, a run's config, and its trained generator."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from apps.gan.config import GanConfig
from apps.gan.model import build_models
from common.rundir import RunDir

APP = "gan"


@dataclass
class LoadedGenerator:
    run: RunDir
    cfg: GanConfig
    generator: nn.Module  # raw weights as trained (train mode); see apps.gan.sampling.sampling_copy
    step: int
    which: str  # "G_ema" or "G"


def load_generator(path: str, use_ema: bool = True, step: int | None = None) -> LoadedGenerator:
    """Open run ``path`` and load the latest (or ``step``'s) generator; the EMA one when the run
    has it and ``use_ema``."""
    run = RunDir.open(path, APP)
    cfg = run.typed_config(GanConfig)
    g, _ = build_models(cfg.model, cfg.data.image_size, cfg.data.channels)
    which = "G_ema" if use_ema and cfg.train.ema_decay > 0 else "G"
    at = run.load_weights(which, g, step=step)
    return LoadedGenerator(run, cfg, g, at, which)


def pick_device(cpu: bool = False) -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() and not cpu else "cpu")
