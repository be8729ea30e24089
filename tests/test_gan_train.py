"""GAN training: a tiny run trains with finite losses, checkpoints, resumes exactly, extends, and
writes its logs (metrics, probes, sample grids) where the rest of the suite reads them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from apps.gan import train as train_cmd
from apps.gan.config import GanConfig, ModelConfig, OptimConfig, lr_factor
from apps.gan.data import StepBatches, shard, step_indices
from apps.gan.ema import EMA, ema_decay_at
from apps.gan.model import Generator
from apps.gan.step import d_loss, g_loss
from common.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
DIGITS = str(ROOT / "configs" / "gan" / "digits.yaml")


def tiny_args(out: Path, steps: int = 6, *extra: str) -> list[str]:
    """A run that takes a few seconds on one CPU thread: 8×8 digits, 4-channel nets, batch 16."""
    return ["--config", DIGITS, f"out={out}", f"steps={steps}", "data.image_size=8", "data.max_images=200",
            "model.nz=8", "model.latent_classes=4", "model.ngf=4", "model.ndf=4", "train.batch_size=16",
            "train.log_every=2",
            "train.checkpoint_every=3", "train.sample_every=3", "train.progress=false", "train.check_every=2",
            "probes.every=1", "probes.window=2", "train.fid_every=0", *extra]


def records(run: Path, name: str = "metrics.jsonl") -> list[dict]:
    return [json.loads(x) for x in (run / name).read_text().splitlines()]


def test_tiny_run_trains_with_finite_losses_and_writes_its_logs(tmp_path):
    run = tmp_path / "run"
    train_cmd.main(tiny_args(run, 6, "train.ema_decay=0.9"))
    recs = records(run)
    assert [r["step"] for r in recs] == [2, 4, 6]
    for r in recs:
        for key in ("loss_d", "loss_g", "d_real", "d_fake", "lr", "time"):
            assert torch.isfinite(torch.tensor(r[key])), (key, r)
        assert 0.0 <= r["d_real"] <= 1.0 and 0.0 <= r["d_fake"] <= 1.0
    probes = records(run, "probes.jsonl")
    assert {p["model"] for p in probes} == {"G", "D"}
    assert {"dead_frac", "dormant_frac", "grad_sparsity", "act_rms", "grad_rms"} <= probes[0].keys()
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["step_00000003", "step_00000006"]
    assert sorted(p.name for p in (run / "checkpoints" / "step_00000006" / "models").iterdir()) == [
        "D.safetensors", "G.safetensors", "G_ema.safetensors"]
    assert (run / "samples" / "final.png").is_file() and (run / "samples" / "step_00000003.png").is_file()
    # the EMA generator moved away from its start but is not G itself
    g, e = load_file(run / "checkpoints/step_00000006/models/G.safetensors"), \
        load_file(run / "checkpoints/step_00000006/models/G_ema.safetensors")
    assert not torch.equal(g["main.conv1.weight"], e["main.conv1.weight"])


def test_resume_continues_at_the_checkpoint_and_matches_an_uninterrupted_run(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    const = "optim.schedule=constant"  # a linear decay is planned over `steps`, so extending re-plans it
    train_cmd.main(tiny_args(straight, 6, const))
    train_cmd.main(tiny_args(resumed, 3, const))  # stops at its step-3 checkpoint ...
    assert [r["step"] for r in records(resumed)] == [2, 3]
    train_cmd.main(tiny_args(resumed, 6, const))  # ... and steps=6 extends it from there
    assert [r["step"] for r in records(resumed)] == [2, 3, 4, 6]
    a = load_file(straight / "checkpoints/step_00000006/models/G.safetensors")
    b = load_file(resumed / "checkpoints/step_00000006/models/G.safetensors")
    for key in a:  # data order, noise, optimizer and RNG all restored: bit-identical on the CPU
        assert torch.equal(a[key], b[key]), key
    s, r = records(straight)[-1], records(resumed)[-1]
    assert (s["loss_d"], s["loss_g"]) == (r["loss_d"], r["loss_g"])
    train_cmd.main(tiny_args(resumed, 6, const))  # re-running a finished run changes nothing
    assert [r["step"] for r in records(resumed)] == [2, 3, 4, 6]


def test_data_order_is_a_pure_function_of_seed_and_step():
    a = step_indices(3, 17, 100, 16)
    assert torch.equal(a, step_indices(3, 17, 100, 16))
    assert not torch.equal(a, step_indices(4, 17, 100, 16))
    epoch = torch.cat([step_indices(0, s, 100, 16) for s in range(6)])  # one epoch: no repeats
    assert len(set(epoch.tolist())) == 96
    two = [list(StepBatches(0, 100, 16, 5, 8, rank=r, world=2)) for r in (0, 1)]
    one = list(StepBatches(0, 100, 16, 5, 8))
    for s in range(3):  # the two processes' shares make up the one-process batch
        assert two[0][s] + two[1][s] == one[s] == step_indices(0, 5 + s, 100, 16).tolist()
    assert shard(torch.arange(8), 1, 2).tolist() == [4, 5, 6, 7]


def test_losses_match_their_definitions():
    r, f = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    bce = torch.nn.functional.binary_cross_entropy
    expect = bce(torch.sigmoid(r), torch.ones(2)) + bce(torch.sigmoid(f), torch.zeros(2))
    assert d_loss(r, f, "nonsaturating").item() == pytest.approx(expect.item(), rel=1e-6)
    assert g_loss(f, "nonsaturating").item() == pytest.approx(bce(torch.sigmoid(f), torch.ones(2)).item(), rel=1e-6)
    assert d_loss(r, f, "hinge").item() == pytest.approx((0 + 2.0) / 2 + (1.5 + 0) / 2)
    assert g_loss(f, "hinge").item() == pytest.approx(1.25)


def test_ema_follows_the_weights_with_warmup():
    m = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        m.weight.zero_()
    ema = EMA(m, 0.9)
    with torch.no_grad():
        m.weight.fill_(1.0)
    ema.update(m, step=0)  # warm-up: decay min(0.9, 1/10) = 0.1
    assert ema_decay_at(0.9, 0) == pytest.approx(0.1)
    assert ema.module.weight.flatten().tolist() == pytest.approx([0.9, 0.9])
    ema.update(m, step=1000)  # decay 0.9: 0.9 + 0.1 · (1 − 0.9)
    assert ema.module.weight.flatten().tolist() == pytest.approx([0.91, 0.91])
    assert not ema.module.weight.requires_grad


def test_digits_config_loads_with_the_documented_defaults():
    cfg = load_config(GanConfig, DIGITS, [], app="gan")
    assert cfg.data.source == "digits" and cfg.data.image_size == 16 and cfg.out == "runs/gan/digits"
    assert cfg.model.d_act == "leaky_relu" and cfg.model.d_act_params == {"alpha": 0.2}
    assert (cfg.model.latent_classes, cfg.train.augment, cfg.optim.schedule) == (10, 0.125, "linear")
    assert (cfg.optim.r1_gamma, cfg.optim.r1_every, cfg.steps) == (0.3, 4, 14000)
    base = GanConfig()  # the defaults are pytorch/examples' DCGAN
    assert (base.optim.lr_g, base.optim.lr_d, base.optim.betas) == (2e-4, 2e-4, [0.5, 0.999])
    assert (base.model.g_act, base.model.init, base.train.batch_size, base.data.image_size) == ("relu", "dcgan", 64, 64)
    assert (base.model.latent_classes, base.train.augment, base.optim.schedule) == (0, 0.0, "constant")
    assert base.optim.r1_gamma == 0.0


def test_discrete_code_is_a_uniform_one_hot_drawn_from_the_same_noise():
    from apps.gan.model import discrete_code

    z = torch.randn(20_000, 12, generator=torch.Generator().manual_seed(0))
    out = discrete_code(z, 5)
    code = out[:, :5]
    assert out.shape == z.shape and torch.equal(out[:, 5:], z[:, 5:])  # the Gaussian part is untouched
    assert torch.equal(code.argmax(1), z[:, :5].argmax(1))
    assert code.unique().tolist() == pytest.approx([0.0, 5 ** 0.5]) and code.ne(0).sum(1).eq(1).all()
    shares = torch.bincount(code.argmax(1), minlength=5).double() / len(z)
    assert shares.sub(0.2).abs().max() < 0.015  # argmax of i.i.d. normals: uniform over the k codes
    g = Generator(8, 1, nz=12, ngf=4, latent_classes=5).eval()
    z2 = z[:2].clone()
    z2[:, :5] = z2[:, :5] * 3  # same argmax, other values: the code, and so the image, are the same
    assert torch.equal(g(z[:2]), g(z2)) and torch.equal(g(z[:2]), g(z[:2, :, None, None]))
    with pytest.raises(ConfigError, match="latent_classes"):
        ModelConfig(nz=8, latent_classes=9)


def test_linear_schedule_decays_from_its_start_to_the_floor():
    opt = OptimConfig(schedule="linear", decay_start=0.5, min_lr_ratio=0.1)
    assert [lr_factor(opt, s, 100) for s in (0, 49, 50)] == [1.0, 1.0, 1.0]
    assert lr_factor(opt, 75, 100) == pytest.approx(0.55) and lr_factor(opt, 100, 100) == pytest.approx(0.1)
    assert lr_factor(OptimConfig(), 99, 100) == 1.0  # constant: pytorch/examples


def test_augmentation_translates_each_image_by_its_own_offset():
    from apps.gan.augment import translate

    x = torch.arange(32, dtype=torch.float32).view(2, 1, 4, 4).requires_grad_(True)
    y = translate(x, torch.tensor([[1, 0], [0, -1]]), max_shift=1)
    assert y[0, 0, 0].tolist() == [-1.0] * 4 and torch.equal(y[0, 0, 1:], x[0, 0, :3])  # down by one row
    assert torch.equal(y[1, 0, :, :3], x[1, 0, :, 1:]) and y[1, 0, :, 3].tolist() == [-1.0] * 4  # left by one
    y.sum().backward()  # differentiable: each input pixel that stays in view gets gradient 1
    assert x.grad[0, 0, 3].tolist() == [0.0] * 4 and x.grad[0, 0, :3].eq(1).all()


def test_r1_penalty_is_the_squared_input_gradient_and_changes_training(tmp_path):
    from apps.gan.step import r1_penalty

    w = torch.tensor([[1.0, -2.0, 3.0]])
    x = torch.randn(5, 3, requires_grad=True)
    assert r1_penalty(x @ w.T, x).item() == pytest.approx(14.0)  # ∇ₓ(w·x) = w for every row: ‖w‖² = 14
    x2 = torch.randn(4, 3, requires_grad=True)
    w2 = torch.randn(3, requires_grad=True)
    r1_penalty((x2 * w2).sum(1) ** 2, x2).backward()  # differentiable in D's weights
    assert w2.grad is not None and torch.isfinite(w2.grad).all()

    plain, r1 = tmp_path / "plain", tmp_path / "r1"
    train_cmd.main(tiny_args(plain, 4))
    train_cmd.main(tiny_args(r1, 4, "optim.r1_gamma=10", "optim.r1_every=2"))
    assert all(torch.isfinite(torch.tensor(r["loss_d"])) for r in records(r1))
    a = load_file(plain / "checkpoints/step_00000004/models/D.safetensors")
    b = load_file(r1 / "checkpoints/step_00000004/models/D.safetensors")
    assert any(not torch.equal(a[k], b[k]) for k in a)  # the penalty reached D's update
