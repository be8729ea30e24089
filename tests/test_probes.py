"""Probes against hand-computed values on Linear and Conv models, the sampling schedule, the
pre-activation sign rule for leaky units, cross-process summing, and detaching cleanly."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from common.config import ConfigError
from common.probes import ProbeConfig, attach_probes, infer_unit_dim

# Two samples, four features fed through an identity Linear, so pre-activations are these rows:
#   unit 0 always positive, unit 1 never (dead), unit 2 once, unit 3 small (dormant, not dead).
X = torch.tensor([[3.0, -1.0, 2.0, 0.02],
                  [1.0, -2.0, -4.0, 0.02]])
# Upstream gradient dL/dh: loss = (h * C).sum(), so grad_rms = rms(C) exactly.
C = torch.tensor([[1.0, 2.0, -2.0, 0.0],
                  [0.0, -1.0, 1.0, 3.0]])


def identity_mlp(act: nn.Module) -> nn.Sequential:
    lin = nn.Linear(4, 4)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(4))
        lin.bias.zero_()
    return nn.Sequential(lin, act)


def run_steps(probes, model, xs, steps, grad=C):
    for step in range(steps):
        probes.begin_step(step)
        x = xs(step) if callable(xs) else xs
        (model(x) * grad).sum().backward()
        probes.end_step()


def one_record(probes):
    recs = probes.read()
    assert len(recs) == 1
    return recs[0]


def test_linear_relu_hand_computed():
    model = identity_mlp(nn.ReLU())
    probes = attach_probes({"mlp": model}, ProbeConfig(every=1, window=1, tau=0.025))
    run_steps(probes, model, X, 1)
    assert probes.ready()
    r = one_record(probes)
    assert (r["step"], r["model"], r["layer"], r["kind"], r["units"]) == (0, "mlp", "1", "relu", 4)
    assert r["dead_frac"] == 0.25  # unit 1
    # E|h| = [2, 0, 1, 0.02]; mean 0.755; s_3 = 0.02/0.755 = 0.0265 > 0.025: only unit 1 dormant
    assert r["dormant_frac"] == 0.25
    # derivative is 0 where x <= 0: unit 1 twice, unit 2 once, of 8 elements
    assert r["grad_sparsity"] == pytest.approx(3 / 8)
    assert r["act_rms"] == pytest.approx(math.sqrt((9 + 4 + 1 + 2 * 0.02**2) / 8))
    assert r["grad_rms"] == pytest.approx(math.sqrt((1 + 4 + 4 + 1 + 1 + 9) / 8))
    assert r["samples"] == 1


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_other_dtypes(dtype):
    model = identity_mlp(nn.ReLU()).to(dtype)
    probes = attach_probes({"mlp": model}, ProbeConfig(every=1, window=1))
    run_steps(probes, model, X.to(dtype), 1, grad=C.to(dtype))
    r = one_record(probes)
    assert r["dead_frac"] == 0.25 and r["grad_sparsity"] == pytest.approx(3 / 8)
    assert r["grad_rms"] == pytest.approx(math.sqrt(20 / 8))
    assert r["act_rms"] == pytest.approx(math.sqrt((9 + 4 + 1 + 2 * 0.02**2) / 8), rel=1e-2)


def test_dormancy_threshold_is_inclusive_and_scores_exposed():
    model = identity_mlp(nn.ReLU())
    probes = attach_probes({"mlp": model}, ProbeConfig(every=1, window=1, tau=0.03))
    run_steps(probes, model, X, 1)
    assert one_record(probes)["dormant_frac"] == 0.5  # units 1 and 3 now
    scores = probes.masks("mlp")["1"]["score"]
    torch.testing.assert_close(scores, torch.tensor([2.0, 0.0, 1.0, 0.02]) / 0.755)
    # tau = 0: a unit whose outputs are all exactly 0 has score 0 <= 0, i.e. still dormant
    probes = attach_probes({"mlp": model}, ProbeConfig(every=1, window=1, tau=0.0))
    run_steps(probes, model, X, 1)
    assert one_record(probes)["dormant_frac"] == 0.25


def test_leaky_judged_by_preactivation_sign():
    alpha = 0.1
    model = identity_mlp(nn.LeakyReLU(alpha))
    probes = attach_probes({"mlp": model}, ProbeConfig(every=1, window=1, tau=0.025))
    run_steps(probes, model, X, 1)
    r = one_record(probes)
    assert r["kind"] == "leaky_relu"
    assert r["dead_frac"] == 0.25  # unit 1 outputs -0.1, -0.2 (never 0) yet is dead
    assert r["grad_sparsity"] == 0.0  # the local slope is alpha, never 0
    # |h| per unit: [2, 0.15, (2 + 0.4)/2, 0.02]
    e = torch.tensor([2.0, 0.15, 1.2, 0.02])
    torch.testing.assert_close(probes.masks("mlp")["1"]["score"], e / e.mean())


def test_leaky_dormant_unit_counted():
    model = identity_mlp(nn.LeakyReLU(0.1))
    probes = attach_probes({"mlp": model}, ProbeConfig(every=1, window=1, tau=0.025))
    run_steps(probes, model, X, 1)
    r = one_record(probes)
    # s_3 = 0.02 / mean([2, 0.15, 1.2, 0.02]) = 0.02 / 0.8425 = 0.02374 <= 0.025
    assert r["dormant_frac"] == 0.25
    assert r["act_rms"] == pytest.approx(math.sqrt((9 + 0.01 + 4 + 0.0004 + 1 + 0.04 + 0.16 + 0.0004) / 8))


def test_leaky_alpha_zero_has_sparse_gradients():
    model = identity_mlp(nn.LeakyReLU(0.0))
    probes = attach_probes({"mlp": model}, ProbeConfig(every=1, window=1))
    run_steps(probes, model, X, 1)
    assert one_record(probes)["grad_sparsity"] == pytest.approx(3 / 8)


def conv_model(act: nn.Module) -> nn.Sequential:
    """1x1 conv: ch0 = in0, ch1 = -|in0| - 10 (dead), ch2 = 0.01 * in1 (tiny, dormant)."""
    conv = nn.Conv2d(2, 3, kernel_size=1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0] = 1.0
        conv.weight[1, 0] = 0.0
        conv.weight[2, 1] = 0.01
        conv.bias.copy_(torch.tensor([0.0, -10.0, 0.0]))
    return nn.Sequential(conv, act)


XC = torch.tensor([[[[1.0, -1.0], [2.0, -2.0]],
                    [[0.5, 0.5], [0.5, 0.5]]]])  # N=1, C=2, H=W=2


def test_conv_channels_hand_computed():
    model = conv_model(nn.ReLU())
    probes = attach_probes({"D": model}, ProbeConfig(every=1, window=1, tau=0.025))
    g = torch.full((1, 3, 2, 2), 2.0)
    run_steps(probes, model, XC, 1, grad=g)
    r = one_record(probes)
    assert r["units"] == 3  # channels, not the last dim (2)
    assert r["dead_frac"] == pytest.approx(1 / 3)
    # E|h| per channel = [0.75, 0, 0.005]; s_2 = 0.005 / (0.755 / 3) = 0.0199 <= 0.025
    assert r["dormant_frac"] == pytest.approx(2 / 3)
    assert r["grad_sparsity"] == pytest.approx(6 / 12)  # ch0 twice, ch1 four times
    assert r["act_rms"] == pytest.approx(math.sqrt((1 + 4 + 4 * 0.005**2) / 12))
    assert r["grad_rms"] == pytest.approx(2.0)


def test_inplace_relu_sees_the_preactivation():
    a, b = conv_model(nn.ReLU()), conv_model(nn.ReLU(inplace=True))
    recs = []
    for m in (a, b):
        probes = attach_probes({"D": m}, ProbeConfig(every=1, window=1))
        run_steps(probes, m, XC, 1, grad=torch.ones(1, 3, 2, 2))
        recs.append(one_record(probes))
    assert recs[0] == recs[1]


def test_unit_dim_inference_and_override():
    seq = nn.Sequential(nn.Linear(5, 6), nn.ReLU())
    conv = nn.Sequential(nn.ConvTranspose2d(4, 3, 4, 2, 1), nn.BatchNorm2d(3), nn.ReLU(True))
    assert infer_unit_dim(seq, "1") == -1
    assert infer_unit_dim(conv, "2") == 1
    # (N, T, C) through a Linear: units are the last dim even though ndim is 3
    probes = attach_probes({"m": seq}, ProbeConfig(every=1, window=1))
    probes.begin_step(0)
    seq(torch.randn(2, 7, 5))
    probes.end_step()
    assert probes.read()[0]["units"] == 6
    # an explicit override wins (here: count the T dim as units)
    probes = attach_probes({"m": seq}, ProbeConfig(every=1, window=1, unit_dims={"m.1": 1}))
    probes.begin_step(0)
    seq(torch.randn(2, 7, 5))
    probes.end_step()
    assert probes.read()[0]["units"] == 7


def test_generic_activation_uses_its_own_derivative():
    # ReLU6 is not special-cased: its derivative is 0 below 0 and above 6
    model = nn.Sequential(nn.Identity(), nn.ReLU6())
    probes = attach_probes({"m": model}, ProbeConfig(every=1, window=1))
    probes.begin_step(0)
    model(torch.tensor([[-1.0, 3.0, 7.0]]))
    probes.end_step()
    r = probes.read()[0]
    assert r["kind"] == "relu6" and r["grad_sparsity"] == pytest.approx(2 / 3)
    assert r["grad_rms"] is None  # no backward ran


def fused_cls():
    try:
        from common.activations.fused import FusedLeakyReLU
        return FusedLeakyReLU
    except ImportError:  # the activations package not there yet: same attributes, plain math
        class FusedLeakyReLU(nn.Module):
            def __init__(self, channels, alpha=0.2, gain=1.0, bias=True, dim=1):
                super().__init__()
                self.alpha, self.gain, self.dim = alpha, gain, dim
                self.bias = nn.Parameter(torch.zeros(channels))

            def forward(self, x):
                shape = [1] * x.dim()
                shape[self.dim] = -1
                return torch.nn.functional.leaky_relu(x + self.bias.view(shape), self.alpha) * self.gain
        return FusedLeakyReLU


def test_fused_preactivation_includes_its_bias():
    act = fused_cls()(3, alpha=0.2, gain=math.sqrt(2), dim=1)
    conv = nn.Conv2d(2, 3, 1, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0] = 1.0  # ch0 = in0 in {1,-1,2,-2}, bias -1.5: positive once
        conv.weight[1, 0] = 1.0  # ch1 = in0, bias -3: dead though in0 > 0 twice
        conv.weight[2, 1] = 1.0  # ch2 = 0.5, bias 0
        act.bias.copy_(torch.tensor([-1.5, -3.0, 0.0]))
    model = nn.Sequential(conv, act)
    probes = attach_probes({"G": model}, ProbeConfig(every=1, window=1))
    run_steps(probes, model, XC, 1, grad=torch.ones(1, 3, 2, 2))
    r = probes.read()[0]
    assert r["kind"] == "fused_leaky_relu" and r["units"] == 3
    assert r["dead_frac"] == pytest.approx(1 / 3)
    assert r["grad_sparsity"] == 0.0


def test_sampling_schedule_and_window():
    model = identity_mlp(nn.ReLU())
    probes = attach_probes({"mlp": model}, ProbeConfig(every=3, window=2))
    alive = X.clone()
    alive[:, 1] = 5.0  # would revive unit 1, but only on unsampled steps
    sampled = []
    for step in range(7):
        sampled.append(probes.begin_step(step))
        model(X if step % 3 == 0 else alive).sum().backward()
        probes.end_step()
        assert probes.ready() == (step in (3, 4))  # full after step 3, read at step 4
        if step == 4:
            r = one_record(probes)
            assert r["step"] == 3 and r["samples"] == 2 and r["dead_frac"] == 0.25
            assert not probes.ready()
    assert sampled == [True, False, False, True, False, False, True]
    assert probes.read()[0]["samples"] == 1  # the new window holds step 6 only
    assert probes.read() == []  # nothing since


def test_window_accumulates_across_sampled_steps():
    model = identity_mlp(nn.ReLU())
    probes = attach_probes({"mlp": model}, ProbeConfig(every=1, window=2))
    revive = X.clone()
    revive[0, 1] = 0.5  # unit 1 positive once, on the second step
    run_steps(probes, model, lambda s: X if s == 0 else revive, 2)
    r = one_record(probes)
    assert r["dead_frac"] == 0.0 and r["samples"] == 2
    assert r["grad_sparsity"] == pytest.approx(5 / 16)


def test_counts_sum_across_processes():
    """Two 'processes' each see one sample; summing their packed sums equals one seeing both."""
    full = identity_mlp(nn.ReLU())
    ref = attach_probes({"m": full}, ProbeConfig(every=1, window=1))
    run_steps(ref, full, X, 1)
    expected = ref.read()

    parts = [attach_probes({"m": full}, ProbeConfig(every=1, window=1)) for _ in range(2)]
    for i, p in enumerate(parts):
        run_steps(p, full, X[i:i + 1], 1, grad=C[i:i + 1])
    other = parts[1].layers[0].packed()
    (got,) = parts[0].read(reduce=lambda t: t + other)
    (want,) = expected
    assert got.pop("samples") == 2 and want.pop("samples") == 1  # forward calls add up too
    assert got == pytest.approx(want)


def test_detach_leaves_nothing():
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(True),
                          nn.Flatten(), nn.LazyLinear(4), nn.LeakyReLU(0.2), nn.Linear(4, 1), nn.Tanh())
    model(torch.randn(2, 2, 5, 5))

    def hook_count():
        return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
                   for m in model.modules())

    with attach_probes({"m": model}, ProbeConfig(every=2, window=5)) as probes:
        assert probes.begin_step(0)
        assert hook_count() == 6  # pre + post hook on each of the 3 activations
        model(torch.randn(2, 2, 5, 5)).sum().backward()
        probes.end_step()
        assert hook_count() == 0  # unsampled steps and between steps: no hooks at all
        assert not probes.begin_step(1)
        assert hook_count() == 0
        probes.begin_step(2)
    assert hook_count() == 0  # the context manager detached mid-step
    assert not probes.begin_step(4)  # detached probes never sample again
    assert hook_count() == 0
    assert [r["kind"] for r in probes.read()] == ["relu", "leaky_relu", "tanh"]


def test_disabled_probes_do_nothing():
    model = identity_mlp(nn.ReLU())
    probes = attach_probes({"m": model}, ProbeConfig(enabled=False, every=1, window=1))
    assert not probes.begin_step(0)
    model(X).sum().backward()
    probes.end_step()
    assert not probes.ready() and probes.read() == []


def test_statistics_stay_on_device_tensors():
    model = identity_mlp(nn.ReLU())
    probes = attach_probes({"m": model}, ProbeConfig(every=1, window=5))
    run_steps(probes, model, X, 2)
    st = probes.layers[0]
    assert isinstance(st.pos, torch.Tensor) and st.pos.device == X.device
    assert st.pos.tolist() == [4.0, 0.0, 2.0, 4.0]  # positive counts over 2 steps


@pytest.mark.parametrize("kwargs, key", [({"every": 0}, "every"), ({"window": 0}, "window"),
                                         ({"tau": -0.1}, "tau"), ({"tau": 1.0}, "tau")])
def test_config_validation(kwargs, key):
    with pytest.raises(ConfigError) as err:
        ProbeConfig(**kwargs)
    assert err.value.key == key


def test_reused_module_with_other_width_is_skipped_not_fatal():
    act = nn.ReLU()
    model = nn.Sequential(nn.Linear(3, 4), act, nn.Linear(4, 5), act)
    probes = attach_probes({"m": model}, ProbeConfig(every=1, window=1))
    probes.begin_step(0)
    with pytest.warns(RuntimeWarning, match="units"):
        model(torch.randn(2, 3)).sum().backward()
    probes.end_step()
    (r,) = probes.read()  # one module, one record: the 4-unit use
    assert r["units"] == 4 and r["samples"] == 1


def test_state_dict_resumes_the_open_window():
    model = identity_mlp(nn.ReLU())
    cfg = ProbeConfig(every=1, window=2)
    whole = attach_probes({"m": model}, cfg)
    run_steps(whole, model, X, 2)
    first = attach_probes({"m": model}, cfg)
    run_steps(first, model, X, 1)
    state = first.state_dict()
    second = attach_probes({"m": model}, cfg)
    second.load_state_dict(state)
    second.begin_step(1)
    (model(X) * C).sum().backward()
    second.end_step()
    assert second.ready()
    assert second.read() == whole.read()
