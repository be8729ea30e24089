"""Activation factory, FusedLeakyReLU as a module, link discovery and swap_activations."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from common.activations import (
    ACTIVATIONS,
    FusedLeakyReLU,
    SwapRecord,
    activation_alpha,
    activation_gain,
    carries_bias,
    find_links,
    is_activation,
    make_activation,
    swap_activations,
)
from common.init import leaky_gain

# --- factory ---------------------------------------------------------------------------------------

_EXPECTED = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "prelu": nn.PReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "fused_leaky_relu": FusedLeakyReLU,
}


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_factory_builds_every_name(name: str) -> None:
    act = make_activation(name, channels=6)
    assert type(act) is _EXPECTED[name] and is_activation(act)
    x = torch.randn(4, 6, 3)
    ref = {
        "relu": F.relu(x), "leaky_relu": F.leaky_relu(x, 0.2), "prelu": F.prelu(x, torch.full((6,), 0.25)),
        "elu": F.elu(x), "gelu": F.gelu(x), "silu": F.silu(x), "sigmoid": torch.sigmoid(x),
        "tanh": torch.tanh(x), "fused_leaky_relu": F.leaky_relu(x, 0.2),
    }[name]  # fmt: skip
    torch.testing.assert_close(act(x), ref)


def test_factory_parameters() -> None:
    assert make_activation("leaky_relu").negative_slope == 0.2  # our documented default
    assert make_activation("leaky_relu", alpha=0.01).negative_slope == 0.01
    assert make_activation("prelu").weight.shape == (1,)
    prelu = make_activation("prelu", channels=8, alpha=0.1)
    assert prelu.weight.shape == (8,) and torch.all(prelu.weight == 0.1) and activation_alpha(prelu) == 0.1
    assert make_activation("elu", alpha=0.5).alpha == 0.5
    assert make_activation("gelu", approximate="tanh").approximate == "tanh"
    fused = make_activation("fused_leaky_relu", channels=5, alpha=0.1, gain=2.0, dim=-1)
    assert (fused.channels, fused.alpha, fused.gain, fused.dim) == (5, 0.1, 2.0, -1)
    assert fused.bias.shape == (5,) and torch.all(fused.bias == 0)
    assert make_activation("fused_leaky_relu", bias=False).bias is None  # no channels needed


@pytest.mark.parametrize(
    "name,kwargs,match",
    [
        ("relu6", {}, "unknown activation 'relu6'; allowed: relu, leaky_relu, prelu"),
        ("leaky_relu", {"negative_slope": 0.1}, "unknown parameter.*negative_slope.*allowed: alpha"),
        ("relu", {"alpha": 0.1}, "unknown parameter"),
        ("leaky_relu", {"alpha": -0.1}, "alpha must be >= 0"),
        ("leaky_relu", {"alpha": True}, "finite number"),
        ("leaky_relu", {"alpha": float("nan")}, "finite number"),
        ("elu", {"alpha": 0.0}, "alpha must be > 0"),
        ("gelu", {"approximate": "fast"}, "approximate must be"),
        ("prelu", {"channels": 4, "dim": 2}, "dim 1 only"),
        ("fused_leaky_relu", {}, "channels is required"),
        ("fused_leaky_relu", {"channels": 4, "alpha": -0.2}, "alpha >= 0"),
        ("fused_leaky_relu", {"channels": 4, "gain": 0.0}, "gain > 0"),
        ("fused_leaky_relu", {"channels": 4, "bias": "yes"}, "bias must be true or false"),
        ("relu", {"channels": 0}, "channels must be a positive int"),
    ],
)
def test_factory_rejects_bad_input(name: str, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make_activation(name, **kwargs)


def test_alpha_gain_and_bias_helpers() -> None:
    assert activation_alpha(nn.ReLU()) == 0.0
    assert activation_alpha(nn.LeakyReLU(0.3)) == pytest.approx(0.3)
    assert activation_alpha(FusedLeakyReLU(2, alpha=0.1)) == pytest.approx(0.1)
    assert activation_alpha(nn.PReLU(init=0.25)) == 0.25
    for smooth in (nn.GELU(), nn.ELU(), nn.Tanh(), nn.Sigmoid(), None):
        assert activation_alpha(smooth) is None
    assert activation_gain(FusedLeakyReLU(2, gain=math.sqrt(2))) == pytest.approx(math.sqrt(2))
    assert activation_gain(nn.LeakyReLU()) == 1.0
    assert carries_bias("fused_leaky_relu") and not carries_bias("fused_leaky_relu", bias=False)
    assert not any(carries_bias(n) for n in ACTIVATIONS if n != "fused_leaky_relu")
    with pytest.raises(ValueError, match="allowed"):
        carries_bias("swish")
    assert not is_activation(nn.Linear(2, 2)) and not is_activation(nn.BatchNorm1d(2))


# --- FusedLeakyReLU --------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha,gain,dim,shape", [(0.2, 1.0, 1, (4, 6, 5, 3)), (0.0, math.sqrt(2), -1, (3, 7, 6)), (0.5, 0.7, 1, (9, 6))])
def test_fused_matches_composition(alpha: float, gain: float, dim: int, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    act = FusedLeakyReLU(6, alpha=alpha, gain=gain, dim=dim).double()
    with torch.no_grad():
        act.bias.normal_()
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    view = [1] * len(shape)
    view[dim] = 6
    bias_ref = act.bias.detach().clone().requires_grad_(True)
    ref = gain * F.leaky_relu(x + bias_ref.view(view), alpha)
    out = act(x)
    torch.testing.assert_close(out, ref)
    g = torch.randn_like(out)
    gx, gb = torch.autograd.grad(out, (x, act.bias), g)
    rx, rb = torch.autograd.grad(ref, (x, bias_ref), g)
    torch.testing.assert_close(gx, rx)
    torch.testing.assert_close(gb, rb)


def test_fused_module_attributes_and_repr() -> None:
    act = FusedLeakyReLU(8, alpha=0.1, gain=2.0, dim=1)
    assert isinstance(act.bias, nn.Parameter) and act.bias.shape == (8,)
    assert "channels=8, alpha=0.1, gain=2.0, bias=True, dim=1" in repr(act)
    assert [n for n, _ in act.named_parameters()] == ["bias"]
    no_bias = FusedLeakyReLU(None, bias=False)
    assert no_bias.bias is None and list(no_bias.parameters()) == []
    torch.testing.assert_close(no_bias(torch.tensor([[-1.0, 2.0]])), torch.tensor([[-0.2, 2.0]]))
    with torch.no_grad():
        act.bias.fill_(3.0)
    act.reset_parameters()
    assert torch.all(act.bias == 0)
    with pytest.raises(ValueError, match="bias must be a 1-D tensor"):
        act(torch.randn(2, 5))  # 5 channels on dim 1, the bias has 8


def test_fused_model_has_the_parameters_of_the_leaky_model() -> None:
    """Conv(bias=False) + fused == Conv(bias=True) + LeakyReLU: same parameter count and function."""
    torch.manual_seed(0)
    leaky = nn.Sequential(nn.Conv2d(3, 16, 3), nn.LeakyReLU(0.2))
    fused = nn.Sequential(nn.Conv2d(3, 16, 3, bias=not carries_bias("fused_leaky_relu")), make_activation("fused_leaky_relu", channels=16))
    assert sum(p.numel() for p in leaky.parameters()) == sum(p.numel() for p in fused.parameters())
    with torch.no_grad():
        fused[0].weight.copy_(leaky[0].weight)
        fused[1].bias.copy_(leaky[0].bias)
    x = torch.randn(2, 3, 9, 9)
    torch.testing.assert_close(fused(x), leaky(x))


# --- link discovery ---------------------------------------------------------------------------------


class _OutOfOrder(nn.Module):
    """Registers its activation first and reuses it after two layers; plus a functional relu."""

    def __init__(self) -> None:
        super().__init__()
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(16, 16)
        self.fc1 = nn.Linear(8, 16)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.fc1(x))
        h = self.act(self.fc2(h))
        return self.head(F.relu(h))


def test_links_follow_data_flow_with_fx_and_registration_order_as_fallback() -> None:
    graph = find_links(_OutOfOrder())
    assert graph.method == "fx"
    assert graph.feeders("act") == ["fc1", "fc2"]
    assert not any(link.exclusive for link in graph.links)  # one module, two uses
    assert len(graph.functional) == 1 and "relu" in graph.functional[0]
    order = find_links(_OutOfOrder(), "order")
    assert order.method == "order" and order.links == []  # nothing precedes `act` in registration
    seq = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(), nn.MaxPool2d(2), nn.ReLU())
    for method in ("fx", "order"):
        g = find_links(seq, method)
        # fx proves the conv's output reaches only the ReLU; registration order cannot know
        assert [(k.layer, k.activation, k.between, k.exclusive) for k in g.links] == [("0", "2", ("1",), method == "fx")]
    with pytest.raises(ValueError, match="method"):
        find_links(seq, "graph")


def test_hooks_see_inside_torch_composites_that_fx_keeps_opaque() -> None:
    """nn.TransformerEncoderLayer registers its activation after linear2 and the norms: order is
    wrong there, a hooked forward pass of an example input finds linear1."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.TransformerEncoderLayer(16, 2, 32, activation=nn.ReLU(), batch_first=True))
    blind = find_links(model)
    assert blind.method == "fx+order" and blind.feeders("1.activation") == ["1.linear2"]
    seen = find_links(model, example_input=torch.randn(2, 5, 8))
    assert seen.method == "fx+hooks" and seen.feeders("1.activation") == ["1.linear1"]
    assert model.training and model[1].training  # the example pass ran in eval mode, then restored
    with pytest.raises(ValueError, match="example_input"):
        find_links(model, "hooks")


def test_only_fx_claims_exclusivity() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(4, 4)
            self.act_a = nn.ReLU(inplace=True)
            self.b = nn.Linear(4, 4)
            self.act_b = nn.ReLU()
            self.c = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.b(self.act_a(self.a(x)))  # in place: `b` reads the activation's output
            return self.c(self.act_b(h) + h)  # `h` read twice (once by a functional add)

    fx = find_links(Net())
    assert fx.link("a", "act_a").exclusive and not fx.link("b", "act_b").exclusive  # fx sees the add
    hooks = find_links(Net(), "hooks", torch.randn(3, 4))
    assert [(k.layer, k.activation) for k in hooks.links] == [("a", "act_a"), ("b", "act_b")]
    assert not any(k.exclusive for k in hooks.links)  # blind to functional uses: never claims it


# --- swap_activations -------------------------------------------------------------------------------


class _UserNet(nn.Module):
    """A user's MLP: module ReLUs, an output sigmoid, and a functional relu in the middle."""

    def __init__(self, functional: bool = True) -> None:
        super().__init__()
        self.fc1 = nn.Linear(32, 64)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(64, 64)
        self.relu2 = nn.ReLU()
        self.fc3 = nn.Linear(64, 64)
        self.out = nn.Linear(64, 1)
        self.squash = nn.Sigmoid()
        self.functional = functional

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu2(self.fc2(self.relu1(self.fc1(x))))
        h = self.fc3(h)
        h = F.relu(h) if self.functional else h
        return self.squash(self.out(h))


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_swap_to_leaky_replaces_modules_reinitialises_and_leaves_functional_calls() -> None:
    torch.manual_seed(0)
    model = _UserNet()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.2)  # a recognisable "trained" state
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    x = torch.randn(256, 32)
    y0 = model(x)
    report: list[SwapRecord] = []
    with pytest.warns(UserWarning, match="functional activation calls.*relu"):
        assert swap_activations(model, "leaky_relu", alpha=0.3, report=report) is model
    assert isinstance(model.relu1, nn.LeakyReLU) and model.relu1.negative_slope == pytest.approx(0.3)
    assert isinstance(model.relu2, nn.LeakyReLU)
    assert isinstance(model.squash, nn.Sigmoid)  # output squashers are not swapped by default
    assert [(r.name, r.feeders) for r in report] == [("relu1", ("fc1",)), ("relu2", ("fc2",))]
    # the feeding layers got the leaky Kaiming init; the others kept their weights
    for name in ("fc1", "fc2"):
        w = getattr(model, name).weight
        fan = w.shape[1]
        assert w.std().item() == pytest.approx(leaky_gain(0.3) / math.sqrt(fan), rel=0.1)
        assert torch.all(getattr(model, name).bias == 0)
    for name in ("fc3.weight", "out.weight", "out.bias"):
        assert torch.equal(dict(model.named_parameters())[name], before[name])
    assert not torch.allclose(model(x), y0)
    # the functional relu is untouched: fc3's negative outputs are still clamped to zero
    h = model.fc3(model.relu2(model.fc2(model.relu1(model.fc1(x)))))
    torch.testing.assert_close(model(x), torch.sigmoid(model.out(h.clamp_min(0))))


def test_swap_to_fused_folds_biases_and_keeps_the_parameter_count() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(12, 24), nn.LeakyReLU(0.2),                 # direct: bias folds
        nn.Unflatten(1, (6, 2, 2)),
        nn.Conv2d(6, 8, 1), nn.BatchNorm2d(8), nn.LeakyReLU(0.2),  # BN between: no fused bias
        nn.Conv2d(8, 5, 1, bias=False), nn.LeakyReLU(0.2),    # no bias to fold: none added
    )  # fmt: skip
    model.eval()
    with torch.no_grad():
        model[4].running_mean.uniform_(-1, 1)
        model[4].running_var.uniform_(0.5, 2)
    n_params = _params(model)
    x = torch.randn(16, 12)
    y0 = model(x)
    report: list[SwapRecord] = []
    swap_activations(model, "fused_leaky_relu", alpha=0.2, reinit=False, report=report)
    assert _params(model) == n_params
    fused = [m for m in model if isinstance(m, FusedLeakyReLU)]
    assert len(fused) == 3 and all(not m.training for m in fused)
    assert (fused[0].channels, fused[0].dim, fused[0].bias is not None) == (24, -1, True)
    assert model[0].bias is None  # moved into the activation
    assert (fused[1].channels, fused[1].dim, fused[1].bias) == (8, 1, None)
    assert model[3].bias is not None  # before the BN: kept, as the BN shift is the bias here
    assert fused[2].bias is None
    assert [r.bias_moved for r in report] == ["0.bias -> 1.bias", None, None]
    torch.testing.assert_close(model(x), y0)  # same α, weights kept: the very same function
    # and back: the fused bias returns to the Linear layer, the function is still the same
    report.clear()
    swap_activations(model, "leaky_relu", alpha=0.2, reinit=False, report=report)
    assert isinstance(model[1], nn.LeakyReLU) and model[0].bias is not None
    assert _params(model) == n_params and report[0].bias_moved == "1.bias -> 0.bias"
    torch.testing.assert_close(model(x), y0)
    # fused → fused keeps the module's bias (the layer has none to give)
    swap_activations(model, "fused_leaky_relu", alpha=0.2, reinit=False)
    swap_activations(model, "fused_leaky_relu", alpha=0.2, gain=1.0, reinit=False)
    assert model[1].bias is not None and model[0].bias is None and _params(model) == n_params
    torch.testing.assert_close(model(x), y0)


def test_fused_bias_going_back_merges_into_a_norm_or_warns() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), FusedLeakyReLU(4, alpha=0.2))
    with torch.no_grad():
        model[2].bias.normal_()
        model[1].bias.normal_()
    model.eval()
    x = torch.randn(2, 3, 6, 6)
    y0 = model(x)
    report: list[SwapRecord] = []
    swap_activations(model, "leaky_relu", alpha=0.2, reinit=False, report=report)
    assert report[0].bias_moved == "2.bias -> 1.bias (added)"
    torch.testing.assert_close(model(x), y0)  # act(bn(x) + b) == act(bn'(x)) with β' = β + b

    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4, bias=False)
            self.act = FusedLeakyReLU(4, dim=-1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.fc(x)
            return self.act(h) + h  # h used twice: its bias cannot move into fc

    net = Residual()
    with pytest.warns(UserWarning, match="bias of act .* is dropped"):
        swap_activations(net, "relu")
    assert net.fc.bias is None


def test_swap_to_fused_with_reinit_uses_the_gain() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 3))
    swap_activations(model, "fused_leaky_relu", alpha=0.2, gain=math.sqrt(2))
    assert model[0].bias is None and torch.all(model[1].bias == 0)
    assert model[0].weight.std().item() == pytest.approx(leaky_gain(0.2, math.sqrt(2)) / 16, rel=0.02)
    x = torch.randn(512, 256)
    # gain √2 is divided out of the init: the output second moment is that of a plain ReLU layer
    assert model[1](model[0](x)).pow(2).mean().item() == pytest.approx(x.pow(2).mean().item(), rel=0.1)


def test_swap_shared_module_and_control_flow_models() -> None:
    torch.manual_seed(0)
    net = _OutOfOrder()
    with pytest.warns(UserWarning):
        swap_activations(net, "fused_leaky_relu", alpha=0.1)
    assert isinstance(net.act, FusedLeakyReLU) and net.act.bias is None  # one module, two layers
    assert net.fc1.bias is not None and net.fc2.bias is not None

    class Branchy(nn.Module):  # data-dependent control flow: fx cannot trace it
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 8)
            self.act = nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.act(self.fc(x))
            return h if h.sum() > 0 else -h

    b = Branchy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        swap_activations(b, "fused_leaky_relu")  # registration order finds fc → act
    # channels and dim come from fc; the bias stays in fc since only fx proves it can move
    assert b.act.channels == 8 and b.act.dim == -1 and b.act.bias is None and b.fc.bias is not None


def test_swap_replaces_shared_registrations_and_respects_types() -> None:
    act = nn.ReLU()
    model = nn.Sequential(nn.Linear(4, 4), act, nn.Linear(4, 4), nn.Tanh())
    model.alias = act  # the same module reachable under a second name
    swap_activations(model, "elu", types=(nn.ReLU, nn.Tanh))
    assert isinstance(model[1], nn.ELU) and model.alias is model[1]
    assert isinstance(model[3], nn.ELU)
    assert isinstance(swap_activations(nn.ReLU(), "gelu"), nn.GELU)  # nothing to put it in


def test_swap_rejects_bad_requests_before_touching_the_model() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for name, params, match in [
        ("swish", {}, "allowed: relu"),
        ("leaky_relu", {"alpha": -1}, "alpha must be >= 0"),
        ("fused_leaky_relu", {"channels": 4}, "infers 'channels'"),
        ("fused_leaky_relu", {"gain": -1.0}, "gain > 0"),
    ]:
        with pytest.raises(ValueError, match=match):
            swap_activations(model, name, **params)
    assert isinstance(model[1], nn.ReLU)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
