"""Claim 7: the remedies for dying units, run through the product's own ``common.remedies`` and
``common.init`` on the digits MLP.

Two measurements, because the remedies act at two different times:

- positive bias init (0.1) acts *before* training: it lowers the share of units that start dead.
  Measured by Monte Carlo over many fresh initialisations of a 3-layer ReLU MLP on the digits.
- bias warming, the thermal kick and ReDo act *during* training: 30% of the hidden units of a
  trained-from-scratch MLP are forced dead (bias = −max(w·x) − 1); plain ReLU leaves every one
  of them dead (claim 5), each remedy must bring a significant share back within the budget.
"""

from __future__ import annotations

import torch
from torch import nn

from apps.theory.digits import digits_subset, kill_units, loss_fn, make_mlp, max_preact
from apps.theory.results import ClaimResult, binomial, mean_and_se, z_check
from common.init import bias_init_
from common.remedies import BiasWarming, redo_recycle, thermal_kick
from common.rng import stream_seed, torch_generator

HIDDEN, DEAD_SHARE, MARGIN, LR = 128, 0.3, 1.0, 0.5
WARM_GAMMA, WARM_STEPS, STEPS = 1.5, 150, 250
EVERY, KICK_STD = 25, 0.3


def dead_at_init(seed: int, bias: float, draws: int) -> torch.Tensor:
    """Share of units dead on 512 digits at initialisation (per draw, pooled over 3 layers of 32),
    with every rectifier's bias set to ``bias`` by ``common.init.bias_init_``."""
    x, _ = digits_subset(seed, 512)
    out = []
    for d in range(draws):
        torch.manual_seed(stream_seed(seed, "theory.init", 7, d))
        net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                            nn.Linear(32, 32), nn.ReLU())
        bias_init_(net, bias)
        dead, h = [], x
        with torch.no_grad():
            for m in net:
                h = m(h)
                if isinstance(m, nn.Linear):
                    dead.append(h.max(dim=0).values <= 0)
        out.append(torch.cat(dead).float().mean())
    return torch.stack(out)


def train_with_remedy(seed: int, remedy: str, n: int = 512) -> dict:
    """Digits MLP 64 → 128 → 10 with 30% of its hidden ReLU units forced dead, full-batch SGD.

    ``remedy``: 'none', 'warming' (γ = 1.5 annealed linearly to 0 over 150 steps), 'kick'
    (every 25 steps, N(0, 0.3²) on dead units' incoming weights and bias) or 'redo' (every 25
    steps, recycle units with dormancy score s_i = E|h_i| / mean_k E|h_k| ≤ 0).
    """
    x, y = digits_subset(seed, n)
    net = make_mlp(seed + 1, HIDDEN, nn.ReLU())
    forced = torch.randperm(HIDDEN, generator=torch.Generator().manual_seed(seed + 2))
    forced = forced[: int(DEAD_SHARE * HIDDEN)]
    kill_units(net[0], x, forced, MARGIN)
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    warming = BiasWarming(net, WARM_GAMMA, WARM_STEPS) if remedy == "warming" else None
    revived_curve, acted = [], 0
    for step in range(STEPS):
        if warming is not None:
            warming.set_step(step)
        loss = loss_fn(net, x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if remedy in ("kick", "redo") and (step + 1) % EVERY == 0:
            gen = torch_generator(seed, "theory.remedy", step)
            with torch.no_grad():
                h = net[1](net[0](x))
            if remedy == "kick":
                dead = max_preact(net[0], x) <= 0
                acted += thermal_kick(net, {"1": dead}, KICK_STD, generator=gen)
            else:
                score = h.abs().mean(dim=0) / h.abs().mean()
                acted += redo_recycle(net, opt, {"1": score <= 0.0}, generator=gen)
        # Judged on the Linear's own output: warming's offset lives in a hook on the activation,
        # so this is the unit as it will be once γ is 0.
        revived_curve.append(float((max_preact(net[0], x)[forced] > 0).float().mean()))
    if warming is not None:
        warming.set_step(STEPS)
        assert not warming.active
    z = max_preact(net[0], x)
    return {"revived": int((z[forced] > 0).sum()), "forced": len(forced),
            "dead_share": float((z <= 0).float().mean()), "loss": float(loss_fn(net, x, y).detach()),
            "curve": revived_curve, "acted": acted}


def claim7(seed: int, quick: bool) -> ClaimResult:
    """Positive bias init prevents dead units; warming, kick and ReDo revive them."""
    draws, n = (100, 256) if quick else (200, 512)
    d0 = dead_at_init(seed + 70, 0.0, draws)
    d1 = dead_at_init(seed + 70, 0.1, draws)
    dm = dead_at_init(seed + 70, -0.1, draws)
    # Same seeds for both inits: a paired difference, its SE from the per-draw differences.
    diff, diff_se = mean_and_se(d0 - d1)
    diff_m, diff_m_se = mean_and_se(d0 - dm)
    checks = [z_check("bias init 0.1: dead share at init, reduction vs bias 0", 0.0, diff, diff_se,
                      "gt")]
    runs = {r: train_with_remedy(seed + 71, r, n) for r in ("none", "warming", "kick", "redo")}
    names = {"warming": f"bias warming (γ={WARM_GAMMA} → 0 over {WARM_STEPS} steps)",
             "kick": f"thermal kick (std {KICK_STD}, every {EVERY} steps)",
             "redo": f"ReDo (τ = 0, every {EVERY} steps)"}
    for r, label in names.items():
        share, se = binomial(runs[r]["revived"], runs[r]["forced"])
        checks.append(z_check(f"{label}: share of forced-dead units alive after {STEPS} steps",
                              0.0, share, se, "gt"))
    share, se = binomial(runs["none"]["revived"], runs["none"]["forced"])
    controls = [
        z_check("plain ReLU (no remedy) against 'forced-dead units come back'", 0.0, share, se, "gt"),
        z_check("bias init −0.1 against 'fewer dead units at init than bias 0'", 0.0, diff_m,
                diff_m_se, "gt"),
    ]
    notes = [
        f"Bias init: {draws} fresh 64 → 32 → 32 → 32 ReLU MLPs (torch default weights, biases "
        "set by common.init.bias_init_), dead = never positive on 512 digits; dead share "
        f"{float(d0.mean()):.4f} at bias 0, {float(d1.mean()):.4f} at 0.1, {float(dm.mean()):.4f} "
        "at −0.1 (paired by seed).",
        f"Revival: digits MLP 64 → {HIDDEN} → 10 on {n} images, {int(DEAD_SHARE * HIDDEN)} hidden "
        "units forced "
        f"dead (bias = −max(w·x) − {MARGIN}), full-batch SGD lr {LR}, {STEPS} steps; remedies from "
        "common.remedies (BiasWarming, thermal_kick, redo_recycle) on masks computed on the "
        "training images.",
        "End of training — dead share of all hidden units / loss: "
        + "; ".join(f"{r} {runs[r]['dead_share']:.3f} / {runs[r]['loss']:.3f}" for r in runs) + ".",
    ]
    if runs["warming"]["dead_share"] >= runs["none"]["dead_share"]:
        notes.append("Bias warming revives the forced-dead units but, as γ anneals, other units "
                     "that leaned on the offset die: its overall dead share is not below plain "
                     "ReLU's here. The claim (it revives) holds; it is not a free lunch.")
    return ClaimResult(
        7, "Remedies for dying units",
        "Positive bias init (0.1), bias warming (add γ, anneal γ → 0), a thermal kick (random "
        "perturbation of dead units' weights and bias) and ReDo recycling (s_i ≤ τ: reinit "
        "incoming, zero outgoing, reset moments) counter dead units.",
        checks, controls, notes=notes,
        series={"remedies": {r: runs[r]["curve"] for r in runs}},
    )
