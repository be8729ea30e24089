"""``train.mixed_precision=bf16`` on the CPU (CPU autocast), with tiny models of both apps.

What bf16 promises here, and the tolerances it is held to:

- the fused bias + LeakyReLU + gain in bfloat16 equals its float32 result rounded to bfloat16: within
  half a bf16 ulp (relative 2**-8) on the PyTorch path, one ulp (2**-7) through the Triton
  interpreter (which truncates where a GPU rounds to nearest); the bias gradient, summed from
  float32 slopes, stays float32 and equal to the float32 path's to 1e-6;
- a small conv net with that activation, under autocast, within 3% of its float32 output's scale;
- both apps train with finite losses, with autocast really on (their logits are bfloat16);
- a bf16 run killed by SIGKILL and re-run with the same command ends bit-identical to an
  uninterrupted one: on the CPU, bf16 autocast is deterministic like float32 (on a GPU the same
  resume holds, to the GPU's own run-to-run determinism);
- one process can run a float32 and then a bf16 run (accelerate's process-wide state).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import apps.translation.train as tr_train
import common.kernels as K
from apps.gan import train as gan_train
from common.activations import FusedLeakyReLU
from common.kernels import fused_leaky_relu
from common.training import make_accelerator
from test_gan_train import records
from test_gan_train import tiny_args as gan_args
from test_translation_cli import tiny_args as tr_args
from test_translation_cli import write_multi30k

try:
    from common.kernels import triton_leaky
    INTERPRET = triton_leaky.INTERPRET
except ImportError:  # no Triton here: the PyTorch path is still checked
    INTERPRET = False

ROOT = Path(__file__).resolve().parents[1]
BF16 = "train.mixed_precision=bf16"
HALF_ULP, ULP = 2.0**-8, 2.0**-7  # relative, bfloat16's 8-bit significand
BACKENDS = [("torch", HALF_ULP)] + ([("triton", ULP)] if INTERPRET else [])


# ---------------------------------------------------------------- the fused kernel in bf16


@pytest.mark.parametrize("backend, rtol", BACKENDS, ids=[b for b, _ in BACKENDS])
def test_fused_leaky_relu_in_bf16_is_fp32_rounded_once(backend, rtol, monkeypatch):
    monkeypatch.setenv(K.ENV_BACKEND, backend)
    gen = torch.Generator().manual_seed(14)
    x16 = (3 * torch.randn(4, 6, 5, 5, generator=gen)).to(torch.bfloat16).requires_grad_()
    x32 = x16.detach().float().requires_grad_()  # the same values, exactly
    b16, b32 = (torch.randn(6, generator=gen).requires_grad_() for _ in range(2))
    with torch.no_grad():
        b32.copy_(b16)  # a float32 bias, as under autocast (parameters stay float32)
    gy16 = torch.randn(x16.shape, generator=gen).to(torch.bfloat16)

    y16 = fused_leaky_relu(x16, b16, 0.2, math.sqrt(2))
    y32 = fused_leaky_relu(x32, b32, 0.2, math.sqrt(2))
    assert y16.dtype == torch.bfloat16
    torch.testing.assert_close(y16.float(), y32, rtol=rtol, atol=0)
    y16.backward(gy16)
    y32.backward(gy16.float())
    assert x16.grad.dtype == torch.bfloat16 and b16.grad.dtype == torch.float32
    torch.testing.assert_close(x16.grad.float(), x32.grad, rtol=rtol, atol=0)
    torch.testing.assert_close(b16.grad, b32.grad, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend", [b for b, _ in BACKENDS])
def test_a_conv_net_with_the_fused_activation_under_autocast_is_close_to_fp32(backend, monkeypatch):
    monkeypatch.setenv(K.ENV_BACKEND, backend)
    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, bias=False), FusedLeakyReLU(8, alpha=0.2),
                              torch.nn.Conv2d(8, 4, 3, bias=False), FusedLeakyReLU(4, alpha=0.2, gain=math.sqrt(2)))
    x = torch.randn(2, 3, 9, 9)
    want = net(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = net(x)
    assert got.dtype == torch.bfloat16
    assert (got.float() - want).abs().max() <= 0.03 * want.abs().max()
    got.float().square().sum().backward()
    assert all(p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all() for p in net.parameters())


# ---------------------------------------------------------------- the apps in bf16


def spy_fused_inputs(monkeypatch, owner, name: str) -> list[torch.dtype]:
    """Wrap ``owner.name`` (an app's model builder) so every FusedLeakyReLU of the models it builds
    records the dtype it is fed: bfloat16 when autocast is really on (accelerate hands the prepared
    models' outputs back in float32, so the logits alone would not tell)."""
    dtypes: list[torch.dtype] = []
    real = getattr(owner, name)

    def build(*args, **kwargs):
        built = real(*args, **kwargs)
        for model in built if isinstance(built, tuple) else (built,):
            if isinstance(model, torch.nn.Module):
                for m in model.modules():
                    if isinstance(m, FusedLeakyReLU):
                        m.register_forward_hook(lambda mod, args, out: dtypes.append(args[0].dtype))
        return built

    monkeypatch.setattr(owner, name, build)
    return dtypes


def test_gan_trains_in_bf16_with_autocast_on(tmp_path, monkeypatch):
    dtypes = spy_fused_inputs(monkeypatch, gan_train, "build")
    run = tmp_path / "run"
    gan_train.main(gan_args(run, 4, BF16, "model.d_act=fused_leaky_relu"))  # R1 (step 0) and augment on
    assert dtypes and set(dtypes) == {torch.bfloat16}  # D's fused activations ran in bf16
    recs = records(run)
    assert [r["step"] for r in recs] == [2, 4]
    assert all(math.isfinite(r[k]) for r in recs for k in ("loss_d", "loss_g", "d_real", "d_fake"))


def test_translation_trains_in_bf16_with_autocast_on(tmp_path, monkeypatch):
    dtypes = spy_fused_inputs(monkeypatch, tr_train, "build_model")
    data = write_multi30k(tmp_path / "data", sizes=(120, 10, 10))
    run = tmp_path / "run"
    tr_train.main(tr_args(data, run, 10) + [BF16, "model.activation=fused_leaky_relu", "train.eval_every=10",
                                            "train.eval_sentences=4", "train.log_every=5"])
    # the steps (and validation's teacher-forced loss) under autocast: bf16; greedy decoding is not
    assert dtypes[:20] == [torch.bfloat16] * 20  # 10 steps × one encoder and one decoder FFN
    losses = [r for r in records(run) if "loss" in r]
    assert [r["step"] for r in losses] == [5, 10] and all(math.isfinite(r["loss"]) for r in losses)
    assert math.isfinite([r for r in records(run) if "valid_loss" in r][0]["valid_loss"])


def kill_after(step: int, argv: list[str], app: str) -> None:
    """Run ``app``'s train command in a process SIGKILLed right after ``step``, like a dying machine."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LEAKYLAB_FAULT": f"after_step:{step}"}
    proc = subprocess.run([sys.executable, "-m", f"apps.{app}.train", *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]


def same_run(a: Path, b: Path, step: int, models: tuple[str, ...]) -> None:
    for name in models:
        wa = load_file(str(a / "checkpoints" / f"step_{step:08d}" / "models" / f"{name}.safetensors"))
        wb = load_file(str(b / "checkpoints" / f"step_{step:08d}" / "models" / f"{name}.safetensors"))
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), name
    strip = lambda run: [{k: v for k, v in r.items() if k not in ("time", "images_per_s", "tokens_per_s")}  # noqa: E731
                         for r in records(run)]
    assert strip(a) == strip(b)


def test_gan_bf16_run_killed_and_resumed_is_bit_identical(tmp_path):
    args = lambda out: gan_args(out, 6, BF16, "train.ema_decay=0.9")  # noqa: E731 - checkpoint at 3
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    gan_train.main(args(whole))
    kill_after(4, args(killed), "gan")
    assert sorted(p.name for p in (killed / "checkpoints").iterdir()) == ["step_00000003"]
    gan_train.main(args(killed))  # the same command resumes at step 3
    same_run(whole, killed, 6, ("G", "D", "G_ema"))


def test_translation_bf16_run_killed_and_resumed_is_bit_identical(tmp_path):
    data = write_multi30k(tmp_path / "data", sizes=(120, 10, 10))
    args = lambda out: tr_args(data, out, 10) + [BF16, "model.dropout=0.1", "train.checkpoint_every=5",  # noqa: E731
                                                 "train.log_every=5", "train.eval_every=10", "train.eval_sentences=4"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    tr_train.main(args(whole))
    kill_after(7, args(killed), "translation")
    assert sorted(p.name for p in (killed / "checkpoints").iterdir()) == ["step_00000005"]
    tr_train.main(args(killed))
    same_run(whole, killed, 10, ("model",))
    assert json.loads((killed / "checkpoints" / "step_00000010" / "meta.json").read_text())["step"] == 10


def test_one_process_can_switch_precision_between_runs():
    assert make_accelerator("no", cpu=True).mixed_precision == "no"
    acc = make_accelerator("bf16", cpu=True)
    assert acc.mixed_precision == "bf16"
    with acc.autocast():
        assert torch.nn.Linear(2, 2)(torch.ones(1, 2)).dtype == torch.bfloat16
    assert make_accelerator("no", cpu=True).mixed_precision == "no"
