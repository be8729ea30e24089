"""What train, evaluate and translate share: the app name, the config of a run directory, and
a trained model loaded from one (safetensors weights + the run's own tokenizer)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from apps.translation.config import TranslationConfig
from apps.translation.model import build_model
from apps.translation.tokenizer import BPETokenizer
from common.rundir import RunDir

APP = "translation"


@dataclass
class LoadedRun:
    run: RunDir
    cfg: TranslationConfig
    model: nn.Module
    tokenizer: BPETokenizer
    step: int


def load_trained(path: str, device: torch.device | str = "cpu", step: int | None = None) -> LoadedRun:
    """Open run ``path`` and load its latest (or ``step``'s) weights in eval mode."""
    run = RunDir.open(path, APP)
    cfg = run.typed_config(TranslationConfig)
    tokenizer = BPETokenizer.load(run.path)
    model = build_model(cfg.model, tokenizer.vocab_size, tokenizer.pad_id)
    at = run.load_weights("model", model, step=step)
    model.to(device).eval()
    return LoadedRun(run, cfg, model, tokenizer, at)
