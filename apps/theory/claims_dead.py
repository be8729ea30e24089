"""Claims 5 and 6: dead units under real SGD on the digits MLP.

Claim 5: a ReLU unit dead on every input gets exactly zero update, step after step; with α > 0
the update is nonzero and the unit comes back. Claim 6: under L2 weight decay a dead unit's bias
follows b ← (1 − ηλ)b exactly (torch.optim.SGD's ``weight_decay``), and with the bias excluded
from decay it stays put — while the decaying weights let the unit recover at a predicted step.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from apps.theory.digits import digits_subset, kill_units, loss_fn, make_mlp, max_preact
from apps.theory.results import Check, ClaimResult

from common.remedies import param_groups

U32 = 2.0 ** -24  # unit roundoff of float32


def _train_dead(seed: int, act: nn.Module, steps: int, n: int, hidden: int, lr: float) -> dict:
    """Full-batch SGD on the digits MLP whose whole hidden layer starts dead (margin 0.5).

    Records, per step, each hidden unit's update norm ‖Δ(w_i, b_i)‖, the share of units alive
    (max pre-activation over the data > 0) and the loss.
    """
    x, y = digits_subset(seed, n)
    net = make_mlp(seed + 1, hidden, act)
    layer = net[0]
    kill_units(layer, x, torch.arange(hidden), margin=0.5)
    assert bool((max_preact(layer, x) < 0).all())
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    updates, alive, losses = [], [], []
    for _ in range(steps):
        before = torch.cat([layer.weight, layer.bias[:, None]], dim=1).detach().clone()
        loss = loss_fn(net, x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        after = torch.cat([layer.weight, layer.bias[:, None]], dim=1).detach()
        updates.append((after - before).norm(dim=1))
        alive.append(float((max_preact(layer, x) > 0).float().mean()))
        losses.append(loss.item())
    return {"updates": torch.stack(updates), "alive": alive, "loss": losses,
            "alive_end": int((max_preact(layer, x) > 0).sum()), "final_loss": loss_fn(net, x, y).item()}


def claim5(seed: int, quick: bool) -> ClaimResult:
    """A dead ReLU unit never updates; a dead LeakyReLU unit does, and comes back."""
    hidden, lr, alpha = 32, 0.5, 0.2
    n, steps = 512, (150 if quick else 250)
    relu = _train_dead(seed + 50, nn.ReLU(), steps, n, hidden, lr)
    leaky = _train_dead(seed + 50, nn.LeakyReLU(alpha), steps, n, hidden, lr)
    checks = [
        Check(f"ReLU: largest update of a dead unit over {steps} SGD steps", 0.0,
              float(relu["updates"].max()), 0.0, "eq", "exact (bitwise)"),
        Check(f"LeakyReLU({alpha}): smallest per-step update of any unit", 0.0,
              float(leaky["updates"].min()), 0.0, "ge", "exact", strict=True),
        Check(f"LeakyReLU({alpha}): dead units (of {hidden}) alive again after {steps} steps",
              1.0, float(leaky["alive_end"]), 0.0, "ge", "exact count (it can come back: ≥ 1)"),
    ]
    controls = [
        Check("ReLU against 'every update > 0'", 0.0, float(relu["updates"].min()), 0.0, "ge",
              "exact", strict=True),
        Check("ReLU against 'a dead unit comes back'", 1.0, float(relu["alive_end"]), 0.0, "ge",
              "exact count"),
        Check("LeakyReLU against 'update exactly 0'", 0.0, float(leaky["updates"].max()), 0.0, "eq",
              "exact"),
    ]
    first = next((t + 1 for t, a in enumerate(leaky["alive"]) if a > 0), None)
    return ClaimResult(
        5, "Dead units and recovery",
        "A ReLU unit whose pre-activation is negative on every input gets zero update forever; "
        "with α > 0 its expected update is strictly positive and it can come back.",
        checks, controls,
        notes=[f"Digits MLP 64 → {hidden} → 10 on {n} images, full-batch SGD (lr {lr}); every "
               "hidden unit made dead by bias = −max(w·x) − 0.5. The update is ‖Δ(w_i, b_i)‖ "
               "per unit and step, read off the parameters.",
               f"LeakyReLU({alpha}): first unit back after {first} steps, {leaky['alive_end']}/{hidden} "
               f"alive at the end; loss {leaky['final_loss']:.3f}"
               f" vs ReLU's {relu['final_loss']:.3f} (stuck: only the output bias learns). "
               "The dead-unit gradient scales with α, so smaller α needs proportionally more "
               "steps."],
        series={"recovery": {"relu_alive": relu["alive"], "leaky_alive": leaky["alive"],
                             "relu_loss": relu["loss"], "leaky_loss": leaky["loss"],
                             "leaky_update": leaky["updates"].median(dim=1).values.tolist(),
                             "alpha": alpha}},
    )


def _train_decay(seed: int, steps: int, lr: float, wd: float, bias_decay: bool) -> dict:
    """Digits MLP with unit 0 dead yet carrying a positive bias; SGD with L2 weight decay."""
    x, y = digits_subset(seed, 512)
    net = make_mlp(seed + 1, 32, nn.ReLU())
    layer = net[0]
    with torch.no_grad():  # negative weights on non-negative pixels, scaled so max w·x = −1
        w = -layer.weight[0].abs()
        layer.weight[0] = w / -(x @ w).max()
        layer.bias[0] = 0.5
    # The product's groups: weights decayed; biases too only for the seed's setting.
    opt = torch.optim.SGD(param_groups(net, wd, decay_biases=bias_decay), lr=lr)
    b0 = layer.bias[0].item()
    biases, zmax = [], []
    for _ in range(steps):
        loss = loss_fn(net, x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        biases.append(layer.bias[0].item())
        zmax.append(float(max_preact(layer, x, torch.tensor([0]))[0]))
    return {"b0": b0, "bias": biases, "zmax": zmax, "m0": -1.0}


def claim6(seed: int, quick: bool) -> ClaimResult:
    """b ← (1 − ηλ)b on a dead unit under weight decay; excluded from decay the bias stays."""
    lr, wd = 0.1, 0.05
    steps = 160 if quick else 250  # the predicted recovery (step 139) must fall inside
    shrink = 1.0 - lr * wd
    dec = _train_decay(seed + 60, steps, lr, wd, bias_decay=True)
    keep = _train_decay(seed + 60, steps, lr, wd, bias_decay=False)
    t = torch.arange(1, steps + 1, dtype=torch.float64)
    law = dec["b0"] * shrink ** t
    rel_dev = float(((torch.tensor(dec["bias"], dtype=torch.float64) - law).abs() / law).max())
    fp_tol = 3 * steps * U32  # ≤ ~2 float32 roundings per step, compounding over the steps
    # With weights decaying and the bias kept, max_x z_t = shrink^t · max_x w_0·x + b = −shrink^t
    # + b: the unit comes back at the first t with shrink^t < b.
    t_star = math.ceil(math.log(keep["b0"]) / math.log(shrink))
    t_keep = next((i + 1 for i, z in enumerate(keep["zmax"]) if z > 0), math.inf)
    t_dec = next((i + 1 for i, z in enumerate(dec["zmax"]) if z > 0), math.inf)
    # The kept bias is judged while the unit is dead (once alive, data gradients move it).
    dead_steps = min(t_keep, steps + 1) - 1
    kept = torch.tensor(keep["bias"][:dead_steps], dtype=torch.float64)
    keep_law_dev = float(((kept - law[:dead_steps]).abs() / law[:dead_steps]).max())
    checks = [
        Check("decayed bias: max relative deviation from b₀(1−ηλ)ᵗ", 0.0, rel_dev, fp_tol, "eq",
              f"fp32 rounding, 3·T·u = {fp_tol:.1e}"),
        Check("decayed bias and weights: max over steps of max_x z (unit stays dead)", 0.0,
              max(dec["zmax"]), 0.0, "le", "exact"),
        Check("bias excluded from decay: max |b_t − b₀| while dead", 0.0,
              float((kept - keep["b0"]).abs().max()), 0.0, "eq", "exact (bitwise)"),
        Check("bias excluded: step at which the unit comes back (predicted ⌈ln b / ln(1−ηλ)⌉)",
              float(t_star), float(t_keep), 1.0, "eq", "±1 step (fp32 rounding at the crossing)"),
    ]
    controls = [
        Check("decayed bias against 'unchanged'", 0.0,
              max(abs(b - dec["b0"]) for b in dec["bias"]), 0.0, "eq", "exact"),
        Check("excluded bias (while dead) against the decay law", 0.0, keep_law_dev, fp_tol, "eq",
              "fp32 rounding"),
        Check("bias decayed too: recovery step against the prediction", float(t_star), float(t_dec),
              1.0, "eq", "±1 step"),
    ]
    return ClaimResult(
        6, "Weight decay on a dead unit's bias",
        "L2 weight decay on a dead unit's bias shrinks it, b ← (1 − ηλ)b, driving it further from "
        "recovery; excluding biases from decay avoids that.",
        checks, controls,
        notes=[f"Digits MLP 64 → 32 → 10, full-batch torch.optim.SGD(lr={lr}) with per-group "
               f"weight_decay={wd} from common.remedies.param_groups (decay_biases=True for the "
               "seed's setting); "
               "unit 0 has negative weights scaled so max_x w·x = −1 and bias b₀ = 0.5: dead, "
               "though its positive bias pushes towards life. Its data gradient is exactly 0, so "
               "decay is the only force on it.",
               "Decaying everything scales every pre-activation of the unit by (1−ηλ) a step: "
               "max_x z creeps towards 0 but never changes sign, so the unit is dead for good "
               "(literally its distance to recovery shrinks; what the decay removes is the "
               "positive bias that could have outgrown the shrinking weights). With biases excluded "
               "(common.remedies.param_groups) the weights shrink while b stays: back at step "
               f"{t_keep} (predicted {t_star})."],
        series={"decay": {"decayed_bias": dec["bias"], "kept_bias": keep["bias"],
                          "law": law.tolist(), "decayed_zmax": dec["zmax"],
                          "kept_zmax": keep["zmax"]}},
    )
