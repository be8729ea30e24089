"""Overhead of the dead-unit probes on a real DCGAN training step.

Three modes, timed side by side in one run and interleaved in rounds (these machines are noisy):

- ``none``: no probes;
- ``default``: ProbeConfig() — sample 1 step in 10, read (and JSON-encode) every 20 sampled steps;
- ``every``: probes on every step (every=1), same window.

A step is pytorch/examples' DCGAN step: D on real and on G(z).detach(), BCE-with-logits, Adam
(2e-4, β=(0.5, 0.999)); then G through D. Images are scikit-learn's digits upscaled to
``--image-size`` (the same data the GAN app embeds). G and D come from apps/gan/model.py (G: ReLU,
D: LeakyReLU(0.2)), N(0, 0.02) init. Each mode runs ``--block`` consecutive global steps per round,
so at the defaults a block holds the sampled steps in the true 1-in-10 proportion, and reads
happen as often as in training (one per 200 steps).

    OMP_NUM_THREADS=1 python bench/probes.py       # CPU, 1 thread, configs/gan/digits.yaml's DCGAN
    python bench/probes.py --device cuda --image-size 64 --nz 100 --ngf 64 --ndf 64 --batch 128 --rounds 20

Prints a table (ms/step, ratio to no probes); asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.probes import ProbeConfig, attach_probes  # noqa: E402


def build_gan(image_size: int, nz: int, ngf: int, ndf: int) -> tuple[nn.Module, nn.Module]:
    from apps.gan.model import Discriminator, Generator
    from common.init import dcgan_init_

    g = Generator(image_size, 1, nz=nz, ngf=ngf, act="relu")
    d = Discriminator(image_size, 1, ndf=ndf, act="leaky_relu", act_params={"alpha": 0.2})
    dcgan_init_(g)
    dcgan_init_(d)
    return g, d


def digits_images(image_size: int) -> torch.Tensor:
    from sklearn.datasets import load_digits

    x = torch.tensor(load_digits().data, dtype=torch.float32).view(-1, 1, 8, 8) / 8.0 - 1.0
    return F.interpolate(x, size=image_size, mode="bilinear", align_corners=False).clamp(-1, 1)


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (CPU)")
    # defaults: the GAN app's CPU config (configs/gan/digits.yaml); pytorch/examples' DCGAN is
    # --image-size 64 --nz 100 --ngf 64 --ndf 64 --batch 128
    ap.add_argument("--image-size", type=int, default=16)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--nz", type=int, default=64)
    ap.add_argument("--ngf", type=int, default=32)
    ap.add_argument("--ndf", type=int, default=32)
    ap.add_argument("--block", type=int, default=20, help="steps per mode per round")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    G, D = (m.to(dev) for m in build_gan(args.image_size, args.nz, args.ngf, args.ndf))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    data = digits_images(args.image_size).to(dev)
    gen = torch.Generator().manual_seed(0)

    def gan_step() -> None:
        idx = torch.randint(0, data.shape[0], (args.batch,), generator=gen).to(dev)
        real = data[idx]
        z = torch.randn(args.batch, args.nz, device=dev)
        fake = G(z)
        ones = torch.ones(args.batch, device=dev)
        zeros = torch.zeros(args.batch, device=dev)
        opt_d.zero_grad(set_to_none=True)
        loss_d = F.binary_cross_entropy_with_logits(D(real), ones) + \
            F.binary_cross_entropy_with_logits(D(fake.detach()), zeros)
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        F.binary_cross_entropy_with_logits(D(fake), ones).backward()
        opt_g.step()

    models = {"G": G, "D": D}
    modes = {"none": None, "default": attach_probes(models, ProbeConfig()),
             "every": attach_probes(models, ProbeConfig(every=1, window=20))}
    steps = {m: 0 for m in modes}  # each mode's own global step counter
    times: dict[str, list[float]] = {m: [] for m in modes}  # wall seconds per step, per block
    cpu: dict[str, list[float]] = {m: [] for m in modes}  # this process's CPU seconds per step
    records = {m: 0 for m in modes}

    def run_block(mode: str, n: int, timed: bool) -> None:
        probes = modes[mode]
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            if probes is not None:
                probes.begin_step(steps[mode])
            gan_step()
            if probes is not None:
                probes.end_step()
                if probes.ready():
                    recs = probes.read()
                    json.dumps(recs)  # what rundir.log_probes would serialise
                    records[mode] += len(recs)
            steps[mode] += 1
        sync()
        if timed:
            times[mode].append((time.perf_counter() - t0) / n)
            cpu[mode].append((time.process_time() - c0) / n)

    for mode in modes:
        run_block(mode, args.warmup, timed=False)
    names = list(modes)
    for r in range(args.rounds):
        for mode in names[r % 3:] + names[:r % 3]:  # rotate the order every round
            run_block(mode, args.block, timed=True)

    dev_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {args.threads} thread(s)"
    print(f"DCGAN step: {args.image_size}x{args.image_size}, batch {args.batch}, nz {args.nz}, ngf {args.ngf}, "
          f"ndf {args.ndf}; {dev_name}; {args.rounds} rounds x {args.block} steps per mode")
    # On a shared CPU the process's own CPU time is the steadier clock (other jobs inflate wall
    # time, not it); on a GPU only wall time (with synchronisation) means anything.
    clocks = [("wall", times)] + ([("cpu", cpu)] if dev.type == "cpu" else [])
    header = "".join(f" {c + ' ms/step':>13} {'x none':>7} {'median x':>9}" for c, _ in clocks)
    print(f"{'mode':<9}{header} {'records':>8}")
    for mode in names:
        row = ""
        for _, t in clocks:
            mean, med = statistics.mean(t[mode]), statistics.median(t[mode])
            row += (f" {mean * 1e3:>13.2f} {mean / statistics.mean(t['none']):>7.3f}"
                    f" {med / statistics.median(t['none']):>9.3f}")
        print(f"{mode:<9}{row} {records[mode]:>8}")
    for p in modes.values():
        if p is not None:
            p.detach()


if __name__ == "__main__":
    main(sys.argv[1:])
