"""Test-wide settings that must be in place before any project module is imported."""

import os

# Triton decides at kernel-definition time whether to interpret; CI has no GPU, so the fused
# kernel is tested through the interpreter. Must be set before common.kernels is imported.
os.environ.setdefault("TRITON_INTERPRET", "1")
# Two cores are shared by pytest-xdist workers: one thread each keeps them from fighting.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)
