"""Leaky-aware init, measured: signal variance through deep stacks, with negative controls.

Every depth test averages the per-layer second moments over ``SEEDS`` independent weight draws
and compares each layer with the first one: the band is [0.5, 2]. The controls (α = 0.5 built as
if α = 0, torch's default init, torch's ConvTranspose fan) must leave that band, which shows the
measurement can fail.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from common.activations import FusedLeakyReLU
from common.init import (
    bias_init_,
    dcgan_init_,
    effective_fans,
    init_gain,
    kaiming_leaky_,
    leaky_gain,
    leaky_init_,
)

SEEDS = 8
ALPHAS = (0.0, 0.01, 0.2, 0.5)
BAND = (0.5, 2.0)


def _profile(blocks: list[nn.Module], x: torch.Tensor, total: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-layer mean (or, with ``total``, summed) squared pre-activation and its gradient.

    ``blocks`` alternate weight layer, activation. Only input gradients are needed, so weights
    do not require grad; the loss is ``<out, r>`` with a fixed Gaussian ``r``.
    """
    for b in blocks:
        b.requires_grad_(False)
    pres = []
    h = x
    for layer, act in zip(blocks[0::2], blocks[1::2]):
        z = layer(h)
        z.retain_grad()  # x requires grad, so every z is part of the graph
        pres.append(z)
        h = act(z)
    (h * torch.randn_like(h)).sum().backward()
    # forward: per element (the claim); backward: per element, or the total energy ‖∂L/∂z‖²
    fwd = torch.stack([z.detach().double().pow(2).mean() for z in pres])
    bwd = torch.stack([(z.grad.double().pow(2).sum() if total else z.grad.double().pow(2).mean()) for z in pres])
    return fwd, bwd


def _averaged(build, make_input, seeds: int = SEEDS, total: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Seed-averaged profiles, each layer relative to the first layer's."""
    fwd = bwd = 0
    for seed in range(seeds):
        torch.manual_seed(seed)
        blocks = build()
        x = make_input().requires_grad_(True)
        f, b = _profile(blocks, x, total)
        fwd, bwd = fwd + f, bwd + b
    return fwd / fwd[0], bwd / bwd[0]


def _in_band(ratios: torch.Tensor) -> bool:
    return bool(((ratios >= BAND[0]) & (ratios <= BAND[1])).all())


def _mlp(alpha: float, init: str = "leaky", width: int = 512, depth: int = 50) -> list[nn.Module]:
    blocks: list[nn.Module] = []
    for _ in range(depth):
        blocks += [nn.Linear(width, width), nn.LeakyReLU(alpha) if alpha else nn.ReLU()]
    model = nn.Sequential(*blocks)
    if init == "leaky":
        leaky_init_(model)  # reads α from the LeakyReLU after each layer
    elif init == "relu":  # the pitfall: kaiming_normal_ without a=alpha
        for m in model:
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight)
                nn.init.zeros_(m.bias)
    return list(model)


def _convnet(alpha: float, init: str = "leaky", channels: int = 64, depth: int = 50) -> list[nn.Module]:
    # Circular padding: zero padding would shrink the border signal at every layer, a geometric
    # effect of a tiny spatial size that no init can (or should) undo.
    blocks: list[nn.Module] = []
    for _ in range(depth):
        blocks += [nn.Conv2d(channels, channels, 3, padding=1, padding_mode="circular"), nn.LeakyReLU(alpha)]
    model = nn.Sequential(*blocks)
    if init == "leaky":
        leaky_init_(model)
    return list(model)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_linear_50_layers_keep_forward_and_backward_variance(alpha: float) -> None:
    fwd, bwd = _averaged(lambda: _mlp(alpha), lambda: torch.randn(64, 512))
    assert _in_band(fwd), fwd
    assert _in_band(bwd), bwd


@pytest.mark.parametrize("alpha", ALPHAS)
def test_conv_50_layers_keep_forward_and_backward_variance(alpha: float) -> None:
    fwd, bwd = _averaged(lambda: _convnet(alpha), lambda: torch.randn(8, 64, 4, 4))
    assert _in_band(fwd), fwd
    assert _in_band(bwd), bwd


def test_fused_gain_is_divided_out() -> None:
    """A FusedLeakyReLU with gain √2 after each layer: the init reads the gain and compensates."""

    def build() -> list[nn.Module]:
        blocks: list[nn.Module] = []
        for _ in range(50):
            blocks += [nn.Linear(512, 512, bias=False), FusedLeakyReLU(512, alpha=0.2, gain=math.sqrt(2), dim=-1)]
        leaky_init_(nn.Sequential(*blocks))
        return blocks

    fwd, bwd = _averaged(build, lambda: torch.randn(64, 512))
    assert _in_band(fwd), fwd
    assert _in_band(bwd), bwd


def test_alpha_half_initialised_as_relu_explodes() -> None:
    """Negative control: LeakyReLU(0.5) with torch's kaiming_normal_ defaults (a=0) grows ×1.25 a layer."""
    fwd, bwd = _averaged(lambda: _mlp(0.5, init="relu"), lambda: torch.randn(64, 512), seeds=2)
    assert fwd[-1] > BAND[1] * 100 and bwd[0] / bwd[-1] > 1 and not _in_band(bwd)
    per_layer = float(fwd[-1] ** (1 / 49))
    assert per_layer == pytest.approx(1.25, rel=0.03)


@pytest.mark.parametrize("alpha", (0.0, 0.5))
def test_torch_default_init_vanishes(alpha: float) -> None:
    """Negative control: torch's default Linear/Conv init (variance 1/(3 fan_in)) shrinks the signal."""
    fwd, bwd = _averaged(lambda: _mlp(alpha, init="torch"), lambda: torch.randn(64, 512), seeds=2)
    assert fwd[-1] < BAND[0] and not _in_band(bwd)
    fwd, bwd = _averaged(lambda: _convnet(alpha, init="torch", depth=20), lambda: torch.randn(8, 64, 4, 4), seeds=2)
    assert fwd[-1] < BAND[0] and not _in_band(bwd)


# --- transposed convolutions: the DCGAN generator ------------------------------------------------

NZ = 32
G_CHANNELS = (128, 64, 32, 16, 8)  # 1→4→8→16→32→64 pixels: 1 + 4 stride-2 layers


def _generator(alpha: float, init: str = "leaky", z: torch.Tensor | None = None) -> list[nn.Module]:
    blocks: list[nn.Module] = [nn.ConvTranspose2d(NZ, G_CHANNELS[0], 4, 1, 0, bias=False), nn.LeakyReLU(alpha)]
    for c_in, c_out in zip(G_CHANNELS[:-1], G_CHANNELS[1:]):
        blocks += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.LeakyReLU(alpha)]
    model = nn.Sequential(*blocks)
    if init == "leaky":
        leaky_init_(model, example_input=z)
    elif init == "torch_fan":  # kaiming with the right α but torch's fan for ConvTranspose
        for m in model:
            if isinstance(m, nn.ConvTranspose2d):
                nn.init.kaiming_normal_(m.weight, a=alpha, nonlinearity="leaky_relu")
    return list(model)


def _latent() -> torch.Tensor:
    return torch.randn(8, NZ, 1, 1)


@pytest.mark.parametrize("alpha", (0.0, 0.2))
def test_dcgan_generator_keeps_variance_with_exact_fans(alpha: float) -> None:
    z = _latent()
    fwd, bwd = _averaged(lambda: _generator(alpha, z=z), _latent, total=True)
    assert _in_band(fwd), fwd
    assert _in_band(bwd), bwd


def test_dcgan_generator_interior_fans_also_hold() -> None:
    """Without an example input the k/s fan ignores the border crop (×0.77 at 4→8): still in band."""
    fwd, bwd = _averaged(lambda: _generator(0.2), _latent, total=True)
    assert _in_band(fwd), fwd
    assert _in_band(bwd), bwd


def test_dcgan_generator_with_torch_fan_drifts_out() -> None:
    """Negative control: torch's fan reads weight dim 1 (out channels) — the variance halves a layer."""
    fwd, bwd = _averaged(lambda: _generator(0.2, init="torch_fan"), _latent, seeds=4, total=True)
    assert fwd[-1] < BAND[0] and not _in_band(bwd)


def test_first_generator_layer_sees_one_tap_per_channel() -> None:
    """A 4×4 kernel on a 1×1 latent: fan_in is nz, so the first output has variance 2/(1+α²)."""
    torch.manual_seed(0)
    z = torch.randn(256, NZ, 1, 1)
    layer = nn.ConvTranspose2d(NZ, 64, 4, 1, 0, bias=False)
    kaiming_leaky_(layer, 0.2, input_size=(1, 1))
    with torch.no_grad():
        var = layer(z).pow(2).mean().item()
    assert var == pytest.approx(2 / 1.04 * z.pow(2).mean().item(), rel=0.15)
    kaiming_leaky_(layer, 0.2)  # interior rule: 16 taps assumed → 16× too small here
    with torch.no_grad():
        assert layer(z).pow(2).mean().item() < var / 8


# --- fans counted against the real forward/backward passes ----------------------------------------

_LAYERS = [
    (nn.ConvTranspose2d(6, 4, 4, 2, 1), (5, 7)),
    (nn.ConvTranspose2d(6, 4, 4, 1, 0), (1, 1)),
    (nn.ConvTranspose2d(6, 9, 3, 2, 1, output_padding=1, groups=3), (4, 4)),
    (nn.ConvTranspose1d(5, 3, 5, 3, 2, dilation=2), (11,)),
    (nn.ConvTranspose3d(2, 3, 4, 2, 1), (3, 4, 2)),
    (nn.Conv2d(6, 4, 3, 1, 1), (5, 6)),
    (nn.Conv2d(6, 4, 4, 2, 1), (8, 8)),
    (nn.Conv2d(6, 4, 3, padding="same", dilation=2), (7, 7)),
    (nn.Conv2d(6, 4, 3, padding=1, padding_mode="circular"), (5, 5)),
    (nn.Conv1d(4, 8, 5, 2, 2, groups=2), (13,)),
]


@pytest.mark.parametrize("layer,size", _LAYERS, ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else str(v))
def test_exact_fans_count_the_real_connections(layer: nn.Module, size: tuple[int, ...]) -> None:
    """All-ones weights on an all-ones input: each output counts its connections (fan_in), and the
    gradient of the output sum counts each input's connections (fan_out)."""
    layer = layer.double()
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.bias.zero_()
    x = torch.ones(1, layer.in_channels, *size, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    y.sum().backward()
    fan_in, fan_out = effective_fans(layer, size)
    assert fan_in == pytest.approx(y.mean().item(), rel=1e-12)
    assert fan_out == pytest.approx(x.grad.mean().item(), rel=1e-12)


def test_interior_fans_and_torch_disagreement() -> None:
    """Away from borders ConvTranspose's fan_in is in·k²/s²; torch's helper reads out·k²."""
    layer = nn.ConvTranspose2d(256, 128, 4, 2, 1)
    assert effective_fans(layer) == (256 * 16 / 4, 128 * 16)
    torch_fan_in, _ = nn.init._calculate_fan_in_and_fan_out(layer.weight)
    assert torch_fan_in == 128 * 16 != effective_fans(layer)[0]
    # a large input approaches the interior value
    assert effective_fans(layer, 256)[0] == pytest.approx(1024, rel=0.01)
    assert effective_fans(nn.Linear(7, 3)) == (7, 3)
    with pytest.raises(TypeError):
        effective_fans(nn.Embedding(3, 4))


@pytest.mark.parametrize("alpha,act_gain", [(0.0, 1.0), (0.2, 1.0), (0.5, math.sqrt(2))])
def test_kaiming_leaky_std_is_measured(alpha: float, act_gain: float) -> None:
    torch.manual_seed(0)
    layer = nn.Linear(1024, 1024)
    std = kaiming_leaky_(layer, alpha, act_gain, bias=0.1)
    expected = math.sqrt(2 / (1 + alpha**2)) / act_gain / math.sqrt(1024)
    assert std == pytest.approx(expected)
    assert layer.weight.std().item() == pytest.approx(expected, rel=0.01)
    assert torch.all(layer.bias == 0.1)
    # fan_out mode uses the backward fan
    wide = nn.Linear(256, 1024)
    assert kaiming_leaky_(wide, alpha, mode="fan_out") == pytest.approx(leaky_gain(alpha) / 32)
    with pytest.raises(ValueError):
        kaiming_leaky_(wide, alpha, mode="fan_avg")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        kaiming_leaky_(wide, alpha, act_gain=0.0)


@pytest.mark.parametrize("act", [nn.Tanh(), nn.Sigmoid(), nn.GELU(), nn.ELU(), nn.SiLU()], ids=repr)
def test_smooth_activation_gain_normalises_second_moment(act: nn.Module) -> None:
    """For non-piecewise-linear activations the gain makes E[(g·act(z))²] = 1 at z ~ N(0, 1)."""
    torch.manual_seed(0)
    z = torch.randn(2_000_000, dtype=torch.float64)
    measured = (init_gain(act) ** 2 * act(z).pow(2).mean()).item()
    assert measured == pytest.approx(1.0, abs=0.005)
    assert init_gain(None) == 1.0 and init_gain(nn.ReLU()) == pytest.approx(math.sqrt(2))


def test_walker_reads_the_following_activation_and_sets_bias_carriers() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(64, 256),  # → LeakyReLU(0.5)
        nn.LeakyReLU(0.5),
        nn.Linear(256, 256, bias=False),  # → fused (its bias is the carrier)
        FusedLeakyReLU(256, alpha=0.2, gain=2.0, dim=-1),
        nn.Linear(256, 256),  # → BatchNorm → ReLU (the BN shift is the carrier)
        nn.BatchNorm1d(256),
        nn.ReLU(),
        nn.Linear(256, 10),  # output: no activation
    )
    stds = leaky_init_(model, bias=0.1)
    assert stds["0"] == pytest.approx(math.sqrt(2 / 1.25) / 8)
    assert stds["2"] == pytest.approx(math.sqrt(2 / 1.04) / 2 / 16)
    assert stds["4"] == pytest.approx(math.sqrt(2) / 16)
    assert stds["7"] == pytest.approx(1 / 16)
    assert torch.all(model[0].bias == 0.1)
    assert torch.all(model[3].bias == 0.1)
    assert torch.all(model[4].bias == 0) and torch.all(model[5].bias == 0.1)
    assert torch.all(model[7].bias == 0)
    assert float(model[4].weight.std()) == pytest.approx(stds["4"], rel=0.02)
    # the positive-bias remedy on its own
    nn.init.zeros_(model[0].bias)
    assert sorted(bias_init_(model, 0.25)) == ["0.bias", "3.bias", "5.bias"]
    assert torch.all(model[0].bias == 0.25) and torch.all(model[7].bias == 0)


def test_walker_follows_data_flow_not_registration_order() -> None:
    """An activation registered first and used after two layers: fx tracing sees the real order."""

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.act = nn.LeakyReLU(0.5)
            self.out = nn.Linear(256, 256)
            self.inp = nn.Linear(256, 256)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(self.act(self.inp(x)))

    net = Net()
    stds = leaky_init_(net)
    assert stds["inp"] == pytest.approx(math.sqrt(2 / 1.25) / 16)
    assert stds["out"] == pytest.approx(1 / 16)


def test_dcgan_init() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.ConvTranspose2d(100, 256, 4, 1, 0), nn.BatchNorm2d(256), nn.ReLU(),
        nn.Conv2d(256, 256, 3), FusedLeakyReLU(256), nn.Linear(30, 40),
    )  # fmt: skip
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(5.0)
    assert dcgan_init_(model) is model
    for i in (0, 3, 5):
        assert model[i].weight.std().item() == pytest.approx(0.02, rel=0.05)
        assert abs(model[i].weight.mean().item()) < 0.002
        assert torch.all(model[i].bias == 0)
    assert model[1].weight.mean().item() == pytest.approx(1.0, abs=0.005)
    assert model[1].weight.std().item() == pytest.approx(0.02, rel=0.2)
    assert torch.all(model[1].bias == 0) and torch.all(model[4].bias == 0)
