"""The activation registry: one ``register_activation`` call and every consumer knows the new
activation — the factory, config validation, ``swap_activations``, the probes, the remedies'
sites and the leaky-aware init — with no other change. Each test's registrations are undone."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from apps.gan.config import ModelConfig as GanModelConfig
from apps.translation.config import ModelConfig as TranslationModelConfig
from common.activations import (
    ACTIVATIONS,
    Param,
    SwapRecord,
    activation_alpha,
    activation_gain,
    activation_params,
    carries_bias,
    is_activation,
    make_activation,
    register_activation,
    swap_activations,
    unregister_activation,
    validate_activation,
)
from common.activations.params import boolean, nonnegative
from common.config import ConfigError
from common.init import dcgan_init_, leaky_gain, leaky_init_
from common.probes import SATURATING, ProbeConfig, activation_kind, attach_probes
from common.remedies.sites import unit_sites


class LeakyReLU6(nn.Module):
    """α·x below 0, x on [0, 6], 6 + α·(x − 6) above: a ReLU6 whose flat parts leak."""

    def __init__(self, alpha: float = 0.1) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x < 0, self.alpha * x, torch.where(x > 6, 6 + self.alpha * (x - 6), x))


class BiasedLeaky(nn.Module):
    """``leaky_relu(x + bias)`` holding the per-channel bias itself (the bias-carrying protocol:
    ``.bias``, ``.channels``, ``.dim``), written without any of the suite's code."""

    def __init__(self, channels: int | None, alpha: float = 0.2, bias: bool = True, dim: int = 1) -> None:
        super().__init__()
        self.channels, self.alpha, self.dim = channels, alpha, dim
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias is not None:
            shape = [1] * x.dim()
            shape[self.dim] = -1
            x = x + self.bias.view(shape)
        return F.leaky_relu(x, self.alpha)


@pytest.fixture
def leaky_relu6():
    """Register ``leaky_relu6``; yields the list of modules its builder made."""
    built: list[nn.Module] = []

    def build(channels: int | None, dim: int, alpha: float) -> nn.Module:
        built.append(LeakyReLU6(alpha))
        return built[-1]

    register_activation("leaky_relu6", types=(LeakyReLU6,), kind="rectifier", build=build,
                        params=(Param("alpha", 0.1, nonnegative),), alpha=lambda m: m.alpha)
    try:
        yield built
    finally:
        unregister_activation("leaky_relu6")


@pytest.fixture
def biased_leaky():
    register_activation("biased_leaky", types=(BiasedLeaky,), kind="rectifier",
                        build=lambda channels, dim, alpha, bias: BiasedLeaky(channels, alpha, bias, dim),
                        params=(Param("alpha", 0.2, nonnegative), Param("bias", True, boolean)),
                        alpha=lambda m: m.alpha, unit_dim=lambda m: m.dim, carries_bias=True)
    try:
        yield
    finally:
        unregister_activation("biased_leaky")


def test_factory_builds_and_reads_it(leaky_relu6) -> None:
    assert "leaky_relu6" in ACTIVATIONS and ACTIVATIONS[-1] == "leaky_relu6"
    assert activation_params("leaky_relu6") == ("alpha",)
    act = make_activation("leaky_relu6", channels=8, alpha=0.3)
    assert type(act) is LeakyReLU6 and act.alpha == 0.3 and is_activation(act)
    torch.testing.assert_close(act(torch.tensor([-1.0, 3.0, 10.0])), torch.tensor([-0.3, 3.0, 7.2]))
    assert make_activation("leaky_relu6").alpha == 0.1  # the entry's default
    assert activation_alpha(act) == 0.3 and activation_gain(act) == 1.0 and not carries_bias("leaky_relu6")
    assert activation_kind(act) == "leaky_relu6" and "leaky_relu6" not in SATURATING
    import common.activations as acts

    assert LeakyReLU6 in acts.SWAPPABLE_TYPES and LeakyReLU6 in acts.ACTIVATION_TYPES
    with pytest.raises(ValueError, match=r"activation 'leaky_relu6': alpha must be >= 0 \(got -0.1\)"):
        make_activation("leaky_relu6", alpha=-0.1)
    with pytest.raises(ValueError, match="unknown parameter.*negative_slope.*allowed: alpha"):
        make_activation("leaky_relu6", negative_slope=0.1)


def test_config_validation_accepts_it_without_building(leaky_relu6) -> None:
    validate_activation("leaky_relu6", {"alpha": 0.3})
    with pytest.raises(ValueError, match=r"activation 'leaky_relu6': alpha must be >= 0 \(got -0.5\)"):
        validate_activation("leaky_relu6", {"alpha": -0.5})
    with pytest.raises(ValueError, match="unknown parameter"):
        validate_activation("leaky_relu6", {"gain": 2.0})
    with pytest.raises(ValueError, match="must be a mapping"):
        validate_activation("leaky_relu6", [0.3])  # type: ignore[arg-type]
    GanModelConfig(g_act="leaky_relu6", d_act="leaky_relu6", d_act_params={"alpha": 0.3})
    TranslationModelConfig(activation="leaky_relu6", act_params={"alpha": 0.3})
    with pytest.raises(ConfigError) as err:
        GanModelConfig(d_act="leaky_relu6", d_act_params={"alpha": -0.1})
    assert str(err.value) == "config key 'd_act_params': activation 'leaky_relu6': alpha must be >= 0 (got -0.1)"
    assert leaky_relu6 == []  # validating built nothing


def test_registration_is_undone() -> None:
    register_activation("leaky_relu6", types=LeakyReLU6, kind="rectifier", build=lambda c, d: LeakyReLU6(),
                        alpha=lambda m: m.alpha)
    unregister_activation("leaky_relu6")
    assert "leaky_relu6" not in ACTIVATIONS and not is_activation(LeakyReLU6())
    with pytest.raises(ValueError, match="unknown activation 'leaky_relu6'"):
        make_activation("leaky_relu6")
    with pytest.raises(ConfigError, match="must be one of"):
        GanModelConfig(g_act="leaky_relu6")


def test_swap_to_it_and_back(leaky_relu6) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    report: list[SwapRecord] = []
    swap_activations(model, "leaky_relu6", alpha=0.5, report=report)
    assert [type(model[i]) for i in (1, 3)] == [LeakyReLU6, LeakyReLU6] and model[3].alpha == 0.5
    assert [(r.name, r.feeders) for r in report] == [("1", ("0",)), ("3", ("2",))]
    # the feeding layers were re-initialised for α = 0.5 (a ReLU's gain would be 12% larger)
    assert model[2].weight.std().item() == pytest.approx(leaky_gain(0.5) / math.sqrt(256), rel=0.03)
    swap_activations(model, "relu")  # its type is swappable by default
    assert isinstance(model[1], nn.ReLU) and isinstance(model[3], nn.ReLU)


def test_probes_and_sites_see_it(leaky_relu6) -> None:
    lin = nn.Linear(3, 3)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(3))
        lin.bias.zero_()
    model = nn.Sequential(lin, LeakyReLU6(0.0))
    probes = attach_probes({"m": model}, ProbeConfig(every=1, window=1))
    probes.begin_step(0)
    # unit 0 positive twice, unit 1 never (dead), unit 2 once and once above 6
    model(torch.tensor([[1.0, -1.0, 8.0], [2.0, -3.0, -1.0]])).sum().backward()
    probes.end_step()
    (r,) = probes.read()
    assert r["kind"] == "leaky_relu6" and r["units"] == 3
    assert r["dead_frac"] == pytest.approx(1 / 3)
    # α = 0: the derivative is 0 below 0 (3 elements) and above 6 (1): found by differentiating
    assert r["grad_sparsity"] == pytest.approx(4 / 6)
    (site,) = unit_sites(model)
    assert site.kind == "leaky_relu6" and site.rectifier and site.feed is lin


def test_leaky_init_reads_its_alpha(leaky_relu6) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(500, 500), LeakyReLU6(0.5), nn.Linear(500, 10))
    stds = leaky_init_(model, bias=0.1)
    assert stds["0"] == pytest.approx(leaky_gain(0.5) / math.sqrt(500))
    assert stds["2"] == pytest.approx(1 / math.sqrt(500))  # no activation after it
    assert torch.all(model[0].bias == 0.1)  # a rectifier: the positive bias goes in front of it


def test_a_bias_carrying_activation_gets_the_bias_moved(biased_leaky) -> None:
    assert carries_bias("biased_leaky") and not carries_bias("biased_leaky", bias=False)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.LeakyReLU(0.2), nn.Linear(3, 2))
    x = torch.randn(5, 4)
    before, bias = model(x), model[0].bias.detach().clone()
    report: list[SwapRecord] = []
    swap_activations(model, "biased_leaky", alpha=0.2, reinit=False, report=report)
    act = model[1]
    assert isinstance(act, BiasedLeaky) and (act.channels, act.dim) == (3, -1) and model[0].bias is None
    assert torch.equal(act.bias.detach(), bias) and report[0].bias_moved == "0.bias -> 1.bias"
    torch.testing.assert_close(model(x), before)  # the same function, the bias only moved
    assert unit_sites(model)[0].bias() is act.bias  # the remedies find the units' bias there too

    with torch.no_grad():
        act.bias.copy_(torch.tensor([-100.0, 0.0, 100.0]))  # unit 0 dead through its own bias
    probes = attach_probes({"m": model}, ProbeConfig(every=1, window=1))
    probes.begin_step(0)
    model(x)
    probes.end_step()
    r = probes.read()[0]
    assert r["kind"] == "biased_leaky" and r["units"] == 3 and r["dead_frac"] == pytest.approx(1 / 3)

    leaky_init_(model, bias=0.1)
    assert torch.all(act.bias == 0.1)  # its own bias is the one in front of the rectifier
    dcgan_init_(model)
    assert torch.all(act.bias == 0)

    swap_activations(model, "leaky_relu", alpha=0.2, reinit=False)
    assert isinstance(model[1], nn.LeakyReLU) and torch.all(model[0].bias == 0)  # moved back


def test_register_refuses_inconsistent_entries() -> None:
    with pytest.raises(ValueError, match="'relu' is already registered"):
        register_activation("relu", types=LeakyReLU6, kind="smooth")
    with pytest.raises(ValueError, match="module type already registered: ReLU"):
        register_activation("my_relu", types=nn.ReLU, kind="smooth")
    with pytest.raises(ValueError, match="alpha reader is required"):
        register_activation("leaky_relu6", types=LeakyReLU6, kind="rectifier")
    with pytest.raises(ValueError, match="alpha must be >= 0"):  # a default failing its own check
        register_activation("leaky_relu6", types=LeakyReLU6, kind="rectifier", alpha=lambda m: m.alpha,
                            build=lambda c, d, alpha: LeakyReLU6(alpha), params=(Param("alpha", -1.0, nonnegative),))
    with pytest.raises(ValueError, match="carries_bias needs"):
        register_activation("leaky_relu6", types=LeakyReLU6, kind="smooth", build=lambda c, d: LeakyReLU6(),
                            carries_bias=True)
    assert "leaky_relu6" not in ACTIVATIONS and "my_relu" not in ACTIVATIONS
