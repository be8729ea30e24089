"""Train a DCGAN.

    accelerate launch -m apps.gan.train --config configs/gan/digits.yaml [key=value ...]
    python -m apps.gan.train --config configs/gan/digits.yaml out=runs/gan/d1 seed=1 model.g_act=leaky_relu

One explicit loop, top to bottom: data → models → optimizers → resume → steps (what every
app's loop does alike — resume, the after-step cadence, logging, checkpoints — is common.loop). Each
step is pytorch/examples' DCGAN step: D on a real batch and on G(z) (detached), one D update; then G
through D with the non-saturating (or hinge) loss, one G update; then the EMA of G. The batch of
step ``s`` is a pure function of (seed, s) (apps.gan.data.step_indices) and so is its noise
(:func:`step_noise`); everything else random lives in the checkpoint — so a killed run re-run with
the same command continues exactly where it stopped, and ``steps=`` larger extends a finished run.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from tqdm import tqdm

from apps.gan.config import GanConfig, lr_factor
from apps.gan.data import StepBatches, batch_loader, load_data
from apps.gan.ema import EMA
from apps.gan.model import build_models, count_parameters, init_models
from apps.gan.runtime import APP
from apps.gan.sampling import noise, sampling_copy, save_grid
from apps.gan.step import Stepper
from common.config import config_to_dict
from common.errors import UserError, cli
from common.loop import TrainLoop, start_accelerator, train_main
from common.probes import attach_probes
from common.remedies import Remedies, param_groups
from common.rng import stream_seed
from common.rundir import RunDir

GRID_SIZE = 64  # images in each sample grid (8×8)


class PeriodicFid:
    """FID of a few generated images every ``train.fid_every`` steps (0 = off), scored on the main
    process; the extractor is built on first use, so runs without it never load one."""

    def __init__(self, cfg: GanConfig, data: Any, device: Any):
        self.cfg, self.data, self.device, self.scorer = cfg, data, device, None

    def due(self, done: int) -> bool:
        every = self.cfg.train.fid_every
        return bool(every) and (done % every == 0 or done == self.cfg.steps)

    def __call__(self, done: int, generator: torch.nn.Module, loop: TrainLoop) -> None:
        """Score ``generator`` and log the record (every process calls; the others wait)."""
        if loop.accelerator.is_main_process:
            if self.scorer is None:
                from apps.gan.scoring import Scorer

                self.scorer = Scorer(self.cfg.eval, self.data, self.device, log=lambda m: tqdm.write(m))
            n = self.cfg.train.fid_samples
            value = self.scorer.quick_fid(sampling_copy(generator), n, self.cfg.eval.seed)
            loop.run.log_metrics({"step": done, "fid": value, "fid_samples": n,
                                  "fid_extractor": self.scorer.info["name"],
                                  "fid_extractor_hash": self.scorer.info["hash"]})
            loop.tracker.log({"fid": value}, done)
            loop.bar.write(f"step {done}: FID {value:.3f} ({self.scorer.info['name']}, {n} images)")
        loop.accelerator.wait_for_everyone()


def save_samples(generator: torch.nn.Module, nz: int, seed: int, run: RunDir, step: int, final: bool) -> None:
    """The grid of ``generator`` on the fixed noise of ``seed`` to samples/step_N.png (and final.png)."""
    grid = sampling_copy(generator).requires_grad_(False)
    device = next(generator.parameters()).device
    images = grid(noise(GRID_SIZE, nz, seed, device)).float().cpu()
    save_grid(images, run.path / "samples" / f"step_{step:08d}.png")
    if final:
        save_grid(images, run.path / "samples" / "final.png")


def build(cfg: GanConfig) -> tuple[torch.nn.Module, torch.nn.Module, torch.optim.Optimizer, torch.optim.Optimizer]:
    """G and D initialised, and their Adam optimizers (weight decay as ``remedies`` says)."""
    G, D = build_models(cfg.model, cfg.data.image_size, cfg.data.channels)
    init_models(G, D, cfg.model.init)
    betas, rem = tuple(cfg.optim.betas), cfg.remedies
    opt_g = torch.optim.Adam(param_groups(G, rem.weight_decay, decay_biases=rem.decay_biases), lr=cfg.optim.lr_g,
                             betas=betas)
    opt_d = torch.optim.Adam(param_groups(D, rem.weight_decay, decay_biases=rem.decay_biases), lr=cfg.optim.lr_d,
                             betas=betas)
    return G, D, opt_g, opt_d


def banner(cfg: GanConfig, data: Any, g_raw: torch.nn.Module, d_raw: torch.nn.Module, accelerator: Any,
           start: int) -> str:
    """The run in one line: data, model sizes, batch, processes and steps."""
    return (f"gan: {data.name}: {len(data.train)} training / {len(data.heldout)} held-out images"
            + (f", {data.num_classes} classes" if data.labelled else ", unlabelled")
            + f"; G {count_parameters(g_raw) / 1e6:.2f}M ({cfg.model.g_act}), D {count_parameters(d_raw) / 1e6:.2f}M "
            f"({cfg.model.d_act}); batch {cfg.train.batch_size} on {accelerator.num_processes} process(es) on "
            f"{accelerator.device}; steps {start} → {cfg.steps}")


def train(cfg: GanConfig, allow_config_change: bool = False) -> RunDir:
    accelerator = start_accelerator(cfg.train, cfg.seed)
    rank, world, dev = accelerator.process_index, accelerator.num_processes, accelerator.device
    main = accelerator.is_main_process
    if cfg.train.batch_size % world:
        raise UserError(f"train.batch_size={cfg.train.batch_size} must be divisible by the {world} processes")

    # -- data (checked before the run directory exists: a typo must not pin its config there) -----
    data = load_data(cfg.data)
    n = len(data.train)
    if cfg.train.batch_size > n:
        raise UserError(f"train.batch_size={cfg.train.batch_size} is larger than the {n} training images of "
                        f"{data.name}; lower train.batch_size")
    run = RunDir.create_or_resume(cfg.out, APP, config_to_dict(cfg), accelerator, allow_config_change)

    # -- models, optimizers, remedies, resume ------------------------------------------------------
    G, D, opt_g, opt_d = build(cfg)
    probes = attach_probes({"G": G, "D": D}, cfg.probes)
    remedies = Remedies(cfg.remedies, {"G": G, "D": D}, {"G": opt_g, "D": opt_d}, probes,
                        seed=cfg.seed)  # before resume
    ema = EMA(G, cfg.train.ema_decay) if cfg.train.ema_decay > 0 else None  # after bias init: same start
    loop = TrainLoop(cfg.train, cfg.steps, run, accelerator, probes, remedies,
                     window=("loss_d", "loss_g", "d_real", "d_fake"))
    models = {"G": G, "D": D, **({"G_ema": ema.module} if ema is not None else {})}
    if loop.resume(models, {"G": opt_g, "D": opt_d}) is not None:
        for opt, lr in ((opt_g, cfg.optim.lr_g), (opt_d, cfg.optim.lr_d)):  # the config's, not the checkpoint's
            for group in opt.param_groups:
                group["lr"], group["betas"] = lr, tuple(cfg.optim.betas)
    if ema is not None:
        ema.module.to(dev)
    G, D, opt_g, opt_d = accelerator.prepare(G, D, opt_g, opt_d)
    g_raw, d_raw = accelerator.unwrap_model(G), accelerator.unwrap_model(D)
    sampler_model = ema.module if ema is not None else g_raw
    fixed_seed = stream_seed(cfg.seed, "gan.grid")  # the grid's noise: same images at every step of one run
    if main:
        print(banner(cfg, data, g_raw, d_raw, accelerator, loop.start) + (f"\n{data.notes}" if data.notes else ""),
              flush=True)
    if loop.finished:
        return run

    # -- the loop --------------------------------------------------------------------------------
    loader = batch_loader(data.train, StepBatches(cfg.seed, n, cfg.train.batch_size, loop.start, cfg.steps, rank,
                                                  world), cfg.data.workers)
    one_step = Stepper(G, D, g_raw, d_raw, opt_g, opt_d, accelerator, cfg.optim.loss, cfg.seed,
                       cfg.train.batch_size, ema, probes, remedies, loop.guard,
                       augment_shift=round(cfg.train.augment * cfg.data.image_size),
                       r1_gamma=cfg.optim.r1_gamma, r1_every=cfg.optim.r1_every,
                       sums=loop.window.sums)  # the step adds loss_d, loss_g, D(x), D(G(z)) to the window
    fid = PeriodicFid(cfg, data, dev)
    G.train()
    D.train()
    loop.begin()
    for step, (real_u8, _) in zip(range(loop.start, cfg.steps), loader):
        factor = lr_factor(cfg.optim, step, cfg.steps)
        for opt, base in ((opt_g, cfg.optim.lr_g), (opt_d, cfg.optim.lr_d)):
            for group in opt.param_groups:
                group["lr"] = base * factor
        one_step(step, real_u8)
        done = loop.after_step(step, work=cfg.train.batch_size)

        if loop.log_due(done):
            m = loop.window.read()
            loop.log({"step": done, "loss_d": m["loss_d"], "loss_g": m["loss_g"], "d_real": m["d_real"],
                      "d_fake": m["d_fake"], "lr": cfg.optim.lr_g * factor, "lr_d": cfg.optim.lr_d * factor,
                      "images_per_s": loop.window.per_second(), "epoch": done * cfg.train.batch_size // n},
                     loss_d=f"{m['loss_d']:.3f}", loss_g=f"{m['loss_g']:.3f}")
        if main and (done == cfg.steps or (cfg.train.sample_every and done % cfg.train.sample_every == 0)):
            save_samples(sampler_model, cfg.model.nz, fixed_seed, run, done, final=done == cfg.steps)
        if fid.due(done):
            fid(done, sampler_model, loop)
        if loop.checkpoint_due(done):
            loop.checkpoint(done)
    loop.end()
    return run


def main(argv: Sequence[str]) -> int:
    return train_main(GanConfig, train, argv, app=APP, description="Train a DCGAN.")


if __name__ == "__main__":
    cli(main)
