"""Training throughput of leakylab's DCGAN step against a plain pytorch/examples loop.

    python bench/gan_step.py                                   # the digits config (16×16, batch 64)
    python bench/gan_step.py --config configs/gan/mnist.yaml --steps 20
    python bench/gan_step.py --threads 2 --rounds 7

Both sides train the *same* G and D (apps.gan.model, same widths, same batch, same init) on the
same pre-loaded real batches, so the table compares the step and nothing else:

- ``plain``: pytorch/examples ``dcgan/main.py``'s loop re-implemented — D with a final Sigmoid
  and ``nn.BCELoss``, ``errD_real.backward()`` then ``errD_fake.backward()``, G through D with D's
  weight gradients computed, noise from the global RNG on the device, and its per-step
  ``.item()`` reads of the losses and D outputs (it prints them every iteration; we do not print).
- ``ours``: :class:`apps.gan.step.Stepper` as the training loop runs it (accelerate's prepared
  models and optimizers, noise a pure function of (seed, step), device-side log sums and the
  divergence flag), with probes off / EMA off, then with the EMA on, then with the probes at
  their defaults (``ProbeConfig()``: every 10th step, 20-step windows, read out as the loop does),
  and — when the config augments or penalises D — the config's whole recipe (EMA + DiffAugment +
  lazy R1 + probes), which does more work per step than pytorch/examples' loop.

Variants run interleaved in ``--rounds`` rounds of ``--steps`` steps after a warm-up, and the
median images/s per variant is reported with its ratio to ``plain``: machines are noisy, so only
side-by-side ratios from one run mean anything. Prints a table; asserts nothing.

``--precision bf16`` runs both sides under bf16 autocast: ours through accelerate's
``mixed_precision``, the plain loop with its forward passes under ``torch.autocast`` and its
``BCELoss`` outside it (autocast refuses ``BCELoss``, as pytorch/examples has no AMP path).
``bench/gpu_check.py`` reuses :func:`plain_loop`, :func:`our_loop`, :func:`synthetic_batches` and
:func:`interleaved_rates`.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apps.gan.config import GanConfig  # noqa: E402
from apps.gan.data import load_data, step_indices, to_model_range  # noqa: E402
from apps.gan.ema import EMA  # noqa: E402
from apps.gan.model import build_models, init_models  # noqa: E402
from apps.gan.step import Stepper  # noqa: E402
from common.config import load_config  # noqa: E402
from common.probes import ProbeConfig, attach_probes  # noqa: E402
from common.training import DivergenceGuard, make_accelerator  # noqa: E402


def plain_loop(cfg: GanConfig, device: torch.device, bf16: bool = False):
    """pytorch/examples' DCGAN iteration (see the module docstring), as a closure over its state;
    ``bf16``: its forward passes under bf16 autocast, each loss in float32 outside it."""
    torch.manual_seed(cfg.seed)
    g, d = build_models(cfg.model, cfg.data.image_size, cfg.data.channels)
    init_models(g, d, cfg.model.init)
    net_g, net_d = g.to(device), nn.Sequential(d, nn.Sigmoid()).to(device)
    criterion = nn.BCELoss()
    betas = tuple(cfg.optim.betas)
    opt_d = torch.optim.Adam(net_d.parameters(), lr=cfg.optim.lr_d, betas=betas)
    opt_g = torch.optim.Adam(net_g.parameters(), lr=cfg.optim.lr_g, betas=betas)
    nz = cfg.model.nz

    def amp():  # a no-op in float32: the loop is then exactly pytorch/examples'
        return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def step(_: int, real_u8: torch.Tensor) -> None:
        real = to_model_range(real_u8, device)
        b = real.size(0)
        net_d.zero_grad()
        label = torch.full((b,), 1.0, dtype=real.dtype, device=device)
        with amp():
            output = net_d(real).view(-1)
        err_d_real = criterion(output.float(), label)
        err_d_real.backward()
        d_x = output.mean().item()
        noise = torch.randn(b, nz, 1, 1, device=device)
        with amp():
            fake = net_g(noise)
            output = net_d(fake.detach()).view(-1)
        label.fill_(0.0)
        err_d_fake = criterion(output.float(), label)
        err_d_fake.backward()
        d_g_z1 = output.mean().item()
        err_d = err_d_real + err_d_fake
        opt_d.step()
        net_g.zero_grad()
        label.fill_(1.0)
        with amp():
            output = net_d(fake).view(-1)
        err_g = criterion(output.float(), label)
        err_g.backward()
        d_g_z2 = output.mean().item()
        opt_g.step()
        _ = (err_d.item(), err_g.item(), d_x, d_g_z1, d_g_z2)  # what its progress line prints

    return step


def our_loop(cfg: GanConfig, accelerator, probes_on: bool, ema_on: bool, recipe: bool = False):
    """apps.gan's step as the training loop runs it, probes read out as the loop reads them."""
    torch.manual_seed(cfg.seed)
    g, d = build_models(cfg.model, cfg.data.image_size, cfg.data.channels)
    init_models(g, d, cfg.model.init)
    betas = tuple(cfg.optim.betas)
    opt_g = torch.optim.Adam(g.parameters(), lr=cfg.optim.lr_g, betas=betas)
    opt_d = torch.optim.Adam(d.parameters(), lr=cfg.optim.lr_d, betas=betas)
    probes = attach_probes({"G": g, "D": d}, ProbeConfig() if probes_on else ProbeConfig(enabled=False))
    ema = EMA(g, cfg.train.ema_decay or 0.999) if ema_on else None
    if ema is not None:
        ema.module.to(accelerator.device)
    guard = DivergenceGuard(cfg.train.check_every)
    G, D, opt_g, opt_d = accelerator.prepare(g, d, opt_g, opt_d)
    stepper = Stepper(G, D, accelerator.unwrap_model(G), accelerator.unwrap_model(D), opt_g, opt_d, accelerator,
                      cfg.optim.loss, cfg.seed, cfg.train.batch_size, ema, probes, None, guard,
                      augment_shift=round(cfg.train.augment * cfg.data.image_size) if recipe else 0,
                      r1_gamma=cfg.optim.r1_gamma if recipe else 0.0, r1_every=cfg.optim.r1_every)

    def step(i: int, real_u8: torch.Tensor) -> None:
        stepper(i, real_u8)
        if guard.due(i + 1):
            guard.check(i + 1, None)
        if probes.ready():
            probes.read()

    return step


def synthetic_batches(count: int, batch: int, channels: int, size: int, seed: int = 0) -> list[torch.Tensor]:
    """``count`` uint8 image batches on the CPU, as the data loader yields them (a step's cost does
    not depend on the pixels, so a GPU check needs no dataset on the machine)."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (batch, channels, size, size), dtype=torch.uint8, generator=g) for _ in range(count)]


def interleaved_rates(variants: dict[str, Callable], batches: list[torch.Tensor], warmup: int, steps: int,
                      rounds: int, sync: Callable[[], None]) -> dict[str, list[float]]:
    """Steps/s of each variant in each of ``rounds`` rounds of ``steps`` steps, after ``warmup``
    steps of each; the order alternates round by round so no variant is always first.
    ``batches`` holds at least ``warmup + steps * rounds`` batches (step ``s`` gets ``batches[s]``)."""
    for fn in variants.values():  # warm-up: allocator, kernels, first probe windows
        for s in range(warmup):
            fn(s, batches[s])
    sync()
    rates: dict[str, list[float]] = {k: [] for k in variants}
    for r in range(rounds):
        order = list(variants) if r % 2 == 0 else list(reversed(variants))
        for name in order:
            fn = variants[name]
            first = warmup + r * steps
            t0 = time.perf_counter()
            for s in range(first, first + steps):
                fn(s, batches[s])
            sync()
            rates[name].append(steps / (time.perf_counter() - t0))
    return rates


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="configs/gan/digits.yaml")
    p.add_argument("--steps", type=int, default=100, help="steps per round and variant")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--cpu", action="store_true", help="run on the CPU even where a GPU exists")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="bf16: both sides under autocast")
    p.add_argument("overrides", nargs="*", help="config key=value overrides (e.g. train.batch_size=128)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(GanConfig, args.config, args.overrides, app="gan")
    bf16 = args.precision == "bf16"
    accelerator = make_accelerator("bf16" if bf16 else "no", cpu=True if args.cpu or not torch.cuda.is_available() else None)
    device = accelerator.device
    data = load_data(cfg.data)
    n, bs = len(data.train), cfg.train.batch_size
    total = args.warmup + args.steps * args.rounds
    batches = [data.train.__getitems__(step_indices(cfg.seed, s, n, bs).tolist())[0] for s in range(total)]

    variants = {
        "plain (pytorch/examples)": plain_loop(cfg, device, bf16),
        "ours, probes off": our_loop(cfg, accelerator, probes_on=False, ema_on=False),
        "ours, probes off, EMA on": our_loop(cfg, accelerator, probes_on=False, ema_on=True),
        "ours, probes on (defaults)": our_loop(cfg, accelerator, probes_on=True, ema_on=False),
    }
    if cfg.train.augment > 0 or cfg.optim.r1_gamma > 0:  # the config's whole recipe
        name = "ours, the whole config (EMA, augment, R1, probes)"
        variants[name] = our_loop(cfg, accelerator, True, True, recipe=True)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    steps_per_s = interleaved_rates(variants, batches, args.warmup, args.steps, args.rounds, sync)
    rates = {k: [v * bs for v in vals] for k, vals in steps_per_s.items()}

    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} thread(s)"
    print(f"DCGAN step throughput — {data.name}, G/D widths {cfg.model.ngf}/{cfg.model.ndf}, nz {cfg.model.nz}, "
          f"batch {bs}, {args.precision}, {dev_name}; torch {torch.__version__}")
    print(f"{args.rounds} interleaved rounds × {args.steps} steps (after {args.warmup} warm-up steps); median")
    base = statistics.median(rates["plain (pytorch/examples)"])
    print(f"{'variant':36s} {'images/s':>10s} {'ratio':>7s}   rounds")
    for name, vals in rates.items():
        med = statistics.median(vals)
        print(f"{name:36s} {med:10.1f} {med / base:7.3f}   " + " ".join(f"{v:.0f}" for v in vals))
    probes_cost = 1 - statistics.median(rates["ours, probes on (defaults)"]) / statistics.median(rates["ours, probes off"])
    print(f"probe cost at defaults: {100 * probes_cost:.1f}% of our step's throughput")


if __name__ == "__main__":
    main()
