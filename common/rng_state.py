"""Capture and restore every RNG a training step may touch, as weights-only-loadable data.

Exact resume needs the torch (CPU and CUDA), NumPy and Python generators back exactly where they
were. The states are stored as tensors, ints and tuples only, so ``torch.load(weights_only=True)``
can read them: nothing here is unpickled as code.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from common.errors import UserError


def capture_rng_state() -> dict[str, Any]:
    """The current states of the torch, CUDA, NumPy and Python generators."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(name),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put the generators back; a state that does not round-trip is an error, not a log line."""
    try:
        torch.set_rng_state(state["torch"])
        np_state = state["numpy"]
        np.random.set_state(
            (
                np_state["name"],
                np_state["keys"].numpy().astype(np.uint32),
                np_state["pos"],
                np_state["has_gauss"],
                np_state["cached"],
            )
        )
        py = state["python"]
        random.setstate((py[0], tuple(py[1]), py[2]))
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise UserError(f"checkpoint RNG state could not be restored ({exc}); the checkpoint is damaged") from None
    if not torch.equal(torch.get_rng_state(), state["torch"]):
        raise UserError("checkpoint RNG state did not restore; the checkpoint is damaged")
