"""Host→device copies that never make the host wait for the GPU.

A copy from ordinary (pageable) host memory to a GPU is not asynchronous even with
``non_blocking=True``: CUDA first stages the bytes through a pinned buffer of its own and may
synchronise with the stream to do so, so the host stalls until the GPU has drained the work
queued before the copy. A training step that does this once per batch loses the overlap of
the host preparing step ``s+1`` while the GPU still runs step ``s``. Staging the batch in pinned
(page-locked) memory makes the copy a real asynchronous DMA; PyTorch's caching host allocator
keeps that buffer alive until the copy has finished.

Everywhere else (a CPU run, a tensor already on the device) these helpers are plain ``.to``.
"""

from __future__ import annotations

import torch


def pins_for(device: torch.device | str) -> bool:
    """Whether host tensors bound for ``device`` should be built in pinned memory (CUDA only)."""
    return torch.device(device).type == "cuda"


def to_device(t: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """``t`` on ``device``; a CPU tensor bound for a GPU goes through pinned memory, asynchronously."""
    device = torch.device(device)
    if not (pins_for(device) and t.device.type == "cpu"):
        return t.to(device)
    if not t.is_pinned():
        t = t.pin_memory()
    return t.to(device, non_blocking=True)
