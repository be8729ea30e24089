"""Leaky-aware init, measured: signal variance through deep stacks, with negative controls.

What is measured. ``v_l``: the second moment of layer l's pre-activation (forward), or of the
loss gradient with respect to it (backward; per element, or the total energy ‖∂L/∂z_l‖² for the
DCGAN stack whose layers change size), for each of several independent weight draws. Two
summaries, each relative to the first layer and required to stay in [0.5, 2] at every layer:

* *chained*: the per-layer gain ``v_{l+1}/v_l`` (backward: ``v_l/v_{l+1}``, from the top)
  averaged over draws, multiplied up through depth;
* *plain*: the draw-averaged ``v_l`` divided by the draw-averaged ``v_1``.

Both estimate the same expectation (``f^l`` for a per-layer factor ``f``). The plain one is
heavy-tailed for narrow layers: the log-variance of any single finite-width network performs a
random walk whose variance grows like Σ 1/n_l whatever its init (Hanin & Rolnick 2018), so
through 50 convolutions of 64 channels (weights shared over positions: n ≈ channels) eight
draws ended between ×0.03 and ×0.9 (median ×0.15) although the expectation is ×1, and an
average of a handful of draws is ruled by the rare large one. The chained summary averages each
layer's gain given its real, propagated input; its variance falls as 1/draws. Linear (width 512) and DCGAN stacks assert both; the 64-channel conv stacks
assert the chained one over 128 draws (the plain one is printed on failure).

The controls — α = 0.5 initialised as if α = 0, torch's default init, torch's ConvTranspose fan
— must leave the band, which shows that the measurement can fail.
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

ALPHAS = (0.0, 0.01, 0.2, 0.5)
BAND = (0.5, 2.0)


def _measure(
    blocks: list[nn.Module], x: torch.Tensor, groups: int = 1, total: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(forward, backward)`` second moments, shape ``(groups, layers)``.

    ``blocks`` alternate weight layer, activation. With ``groups > 1`` the layers are grouped
    convs whose groups are independent networks (one draw each). Only input gradients are
    needed, so weights do not require grad; the loss is ``<out, r>`` with a Gaussian ``r``.
    """
    for b in blocks:
        b.requires_grad_(False)
    x = x.requires_grad_(True)
    pres = []
    h = x
    for layer, act in zip(blocks[0::2], blocks[1::2]):
        z = layer(h)
        z.retain_grad()
        pres.append(z)
        h = act(z)
    (h * torch.randn_like(h)).sum().backward()

    def per_group(t: torch.Tensor, reduce_total: bool) -> torch.Tensor:
        t = t.detach().double().pow(2).reshape(t.shape[0], groups, -1).transpose(0, 1).reshape(groups, -1)
        return t.sum(1) if reduce_total else t.mean(1)

    fwd = torch.stack([per_group(z, False) for z in pres], 1)
    bwd = torch.stack([per_group(z.grad, total) for z in pres], 1)
    return fwd, bwd


def _draws(build, make_input, seeds: int, groups: int = 1, total: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-draw profiles from ``seeds`` seeded builds (× ``groups`` draws each), ``(draws, layers)``."""
    fs, bs = [], []
    for seed in range(seeds):
        torch.manual_seed(seed)
        f, b = _measure(build(), make_input(), groups, total)
        fs.append(f)
        bs.append(b)
    return torch.cat(fs), torch.cat(bs)


def _chained(fwd: torch.Tensor, bwd: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    one = torch.ones(1, dtype=fwd.dtype)
    f = torch.cat([one, (fwd[:, 1:] / fwd[:, :-1]).mean(0).cumprod(0)])
    b = torch.cat([one, (bwd[:, :-1] / bwd[:, 1:]).mean(0).flip(0).cumprod(0)]).flip(0)
    return f, b / b[0]


def _plain(fwd: torch.Tensor, bwd: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    f, b = fwd.mean(0), bwd.mean(0)
    return f / f[0], b / b[0]


def _in_band(ratios: torch.Tensor) -> bool:
    return bool(((ratios >= BAND[0]) & (ratios <= BAND[1])).all())


def _fmt(name: str, r: torch.Tensor) -> str:
    return f"{name}: min {r.min().item():.3g} max {r.max().item():.3g} last {r[-1].item():.3g}"


def _assert_band(fwd: torch.Tensor, bwd: torch.Tensor, plain: bool) -> None:
    cf, cb = _chained(fwd, bwd)
    pf, pb = _plain(fwd, bwd)
    msg = " | ".join(_fmt(n, r) for n, r in (("chained fwd", cf), ("chained bwd", cb), ("plain fwd", pf), ("plain bwd", pb)))
    assert _in_band(cf) and _in_band(cb), msg
    if plain:
        assert _in_band(pf) and _in_band(pb), msg


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


LINEAR_SEEDS, LINEAR_BATCH = 16, 8


@pytest.mark.parametrize("alpha", ALPHAS)
def test_linear_50_layers_keep_forward_and_backward_variance(alpha: float) -> None:
    fwd, bwd = _draws(lambda: _mlp(alpha), lambda: torch.randn(LINEAR_BATCH, 512), LINEAR_SEEDS)
    _assert_band(fwd, bwd, plain=True)


CONV_CHANNELS, CONV_DRAWS, CONV_SIZE = 64, 128, 4


def _convnet(alpha: float, init: str = "leaky", depth: int = 50, groups: int = CONV_DRAWS) -> list[nn.Module]:
    """``depth`` Conv2d(64, 64, 3) layers; ``groups`` independent networks packed as conv groups
    (one grouped conv computes them all at once). Circular padding: zero padding would shrink the
    border signal at every layer, a geometric effect of the tiny spatial size, not of the init."""
    width = CONV_CHANNELS * groups
    blocks: list[nn.Module] = []
    for _ in range(depth):
        conv = nn.Conv2d(width, width, 3, padding=1, padding_mode="circular", groups=groups)
        blocks += [conv, nn.LeakyReLU(alpha) if alpha else nn.ReLU()]
    model = nn.Sequential(*blocks)
    if init == "leaky":
        leaky_init_(model)  # fan_in = 64·9 per group
    return list(model)


def _conv_input(groups: int = CONV_DRAWS) -> torch.Tensor:
    return torch.randn(1, CONV_CHANNELS * groups, CONV_SIZE, CONV_SIZE)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_conv_50_layers_keep_forward_and_backward_variance(alpha: float) -> None:
    fwd, bwd = _draws(lambda: _convnet(alpha), _conv_input, seeds=1, groups=CONV_DRAWS)
    assert fwd.shape == (CONV_DRAWS, 50)
    _assert_band(fwd, bwd, plain=False)


def test_fused_gain_is_divided_out() -> None:
    """A FusedLeakyReLU with gain √2 after each layer: the init reads the gain and compensates."""

    def build() -> list[nn.Module]:
        blocks: list[nn.Module] = []
        for _ in range(50):
            blocks += [nn.Linear(512, 512, bias=False), FusedLeakyReLU(512, alpha=0.2, gain=math.sqrt(2), dim=-1)]
        leaky_init_(nn.Sequential(*blocks))
        return blocks

    fwd, bwd = _draws(build, lambda: torch.randn(LINEAR_BATCH, 512), 8)
    _assert_band(fwd, bwd, plain=True)


def test_alpha_half_initialised_as_relu_explodes() -> None:
    """Negative control: LeakyReLU(0.5) with torch's kaiming_normal_ defaults (a=0) grows ×1.25 a layer."""
    fwd, bwd = _draws(lambda: _mlp(0.5, init="relu"), lambda: torch.randn(LINEAR_BATCH, 512), seeds=2)
    for summary in (_chained, _plain):
        f, b = summary(fwd, bwd)
        assert not _in_band(f) and not _in_band(b)
        assert float(f[-1] ** (1 / 49)) == pytest.approx(1.25, rel=0.03)
        assert float(b[-1] ** (-1 / 49)) == pytest.approx(1.25, rel=0.03)  # gradients grow downwards


@pytest.mark.parametrize("alpha", (0.0, 0.5))
def test_torch_default_init_vanishes(alpha: float) -> None:
    """Negative control: torch's default Linear/Conv init (variance 1/(3 fan_in)) shrinks the signal."""
    fwd, bwd = _draws(lambda: _mlp(alpha, init="torch"), lambda: torch.randn(LINEAR_BATCH, 512), seeds=2)
    for summary in (_chained, _plain):
        f, b = summary(fwd, bwd)
        assert f[-1] < BAND[0] and b[-1] > BAND[1]  # forward vanishes upwards, backward downwards
    fwd, bwd = _draws(lambda: _convnet(alpha, "torch", 20, 8), lambda: _conv_input(8), seeds=1, groups=8)
    for summary in (_chained, _plain):
        f, b = summary(fwd, bwd)
        assert f[-1] < BAND[0] and b[-1] > BAND[1]


# --- transposed convolutions: the DCGAN generator ------------------------------------------------

NZ = 32
G_CHANNELS = (128, 64, 32, 16, 8)  # 1→4→8→16→32→64 pixels: 1 + 4 stride-2 layers
G_SEEDS = 8


def _generator(alpha: float, init: str = "leaky", z: torch.Tensor | None = None) -> list[nn.Module]:
    act = (lambda: nn.LeakyReLU(alpha)) if alpha else nn.ReLU
    blocks: list[nn.Module] = [nn.ConvTranspose2d(NZ, G_CHANNELS[0], 4, 1, 0, bias=False), act()]
    for c_in, c_out in zip(G_CHANNELS[:-1], G_CHANNELS[1:]):
        blocks += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), act()]
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
    """Per-element forward variance and total backward gradient energy through the generator."""
    z = _latent()
    fwd, bwd = _draws(lambda: _generator(alpha, z=z), _latent, G_SEEDS, total=True)
    _assert_band(fwd, bwd, plain=True)


def test_dcgan_generator_interior_fans_also_hold() -> None:
    """Without an example input the k/s fan ignores the border crop (×0.77 at 4→8): still in band."""
    fwd, bwd = _draws(lambda: _generator(0.2), _latent, G_SEEDS, total=True)
    _assert_band(fwd, bwd, plain=True)


def test_dcgan_generator_with_torch_fan_drifts_out() -> None:
    """Negative control: torch's fan reads weight dim 1 (out channels) — the variance halves a layer."""
    fwd, bwd = _draws(lambda: _generator(0.2, init="torch_fan"), _latent, 4, total=True)
    for summary in (_chained, _plain):
        f, b = summary(fwd, bwd)
        assert f[-1] < BAND[0] and b[-1] > BAND[1]


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
    assert model[4].weight.std().item() == pytest.approx(stds["4"], rel=0.02)
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
