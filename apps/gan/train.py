"""Train a DCGAN.

    accelerate launch -m apps.gan.train --config configs/gan/digits.yaml [key=value ...]
    python -m apps.gan.train --config configs/gan/digits.yaml out=runs/gan/d1 seed=1 model.g_act=leaky_relu

One explicit loop, top to bottom: data → models → optimizers → resume → steps. Each step is
pytorch/examples' DCGAN step: D on a real batch and on G(z) (detached), one D update; then G
through D with the non-saturating (or hinge) loss, one G update; then the EMA of G. The batch of
step ``s`` is a pure function of (seed, s) (apps.gan.data.step_indices) and so is its noise
(:func:`step_noise`); everything else random lives in the checkpoint — so a killed run re-run with
the same command continues exactly where it stopped, and ``steps=`` larger extends a finished run.
"""

from __future__ import annotations

import time
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
from common.config import config_to_dict, parse_cli
from common.errors import UserError, cli
from common.faults import fault_point
from common.probes import attach_probes
from common.remedies import Remedies, param_groups
from common.rng import stream_seed
from common.rundir import RunDir
from common.tracking import Tracker
from common.training import DivergenceGuard, make_accelerator, seed_everything

GRID_SIZE = 64  # images in each sample grid (8×8)


def train(cfg: GanConfig, allow_config_change: bool = False) -> RunDir:
    # cpu=True where there is no GPU: only then does accelerate set up gloo for several CPU processes
    accelerator = make_accelerator(cfg.train.mixed_precision,
                                   cpu=True if cfg.train.cpu or not torch.cuda.is_available() else None)
    rank, world, dev = accelerator.process_index, accelerator.num_processes, accelerator.device
    main = accelerator.is_main_process
    if cfg.train.batch_size % world:
        raise UserError(f"train.batch_size={cfg.train.batch_size} must be divisible by the {world} processes")
    seed_everything(cfg.seed)

    # -- data (checked before the run directory exists: a typo must not pin its config there) -----
    data = load_data(cfg.data)
    n = len(data.train)
    if cfg.train.batch_size > n:
        raise UserError(f"train.batch_size={cfg.train.batch_size} is larger than the {n} training images of "
                        f"{data.name}; lower train.batch_size")
    run = RunDir.create_or_resume(cfg.out, APP, config_to_dict(cfg), accelerator, allow_config_change)

    # -- models, optimizers, remedies, resume ------------------------------------------------------
    G, D = build_models(cfg.model, cfg.data.image_size, cfg.data.channels)
    init_models(G, D, cfg.model.init)
    betas = tuple(cfg.optim.betas)
    rem = cfg.remedies
    opt_g = torch.optim.Adam(param_groups(G, rem.weight_decay, decay_biases=rem.decay_biases), lr=cfg.optim.lr_g,
                             betas=betas)
    opt_d = torch.optim.Adam(param_groups(D, rem.weight_decay, decay_biases=rem.decay_biases), lr=cfg.optim.lr_d,
                             betas=betas)
    probes = attach_probes({"G": G, "D": D}, cfg.probes)
    remedies = Remedies(rem, {"G": G, "D": D}, {"G": opt_g, "D": opt_d}, probes, seed=cfg.seed)  # before resume
    ema = EMA(G, cfg.train.ema_decay) if cfg.train.ema_decay > 0 else None  # after bias init: same start
    models = {"G": G, "D": D, **({"G_ema": ema.module} if ema is not None else {})}
    state = run.load_checkpoint(models, {"G": opt_g, "D": opt_d})
    start = 0 if state is None else state["step"]
    if state is not None:
        extra = state["extra"]
        if "probes" in extra:
            probes.load_state_dict(extra["probes"])
        if "remedies" in extra:
            remedies.load_state_dict(extra["remedies"])
        for opt, lr in ((opt_g, cfg.optim.lr_g), (opt_d, cfg.optim.lr_d)):  # the config's, not the checkpoint's
            for group in opt.param_groups:
                group["lr"], group["betas"] = lr, betas
    if ema is not None:
        ema.module.to(dev)
    G, D, opt_g, opt_d = accelerator.prepare(G, D, opt_g, opt_d)
    g_raw, d_raw = accelerator.unwrap_model(G), accelerator.unwrap_model(D)
    guard = DivergenceGuard(cfg.train.check_every)
    sampler_model = ema.module if ema is not None else g_raw
    fixed_seed = stream_seed(cfg.seed, "gan.grid")  # the grid's noise: same images at every step of one run

    if main:
        print(f"gan: {data.name}: {n} training / {len(data.heldout)} held-out images"
              + (f", {data.num_classes} classes" if data.labelled else ", unlabelled")
              + f"; G {count_parameters(g_raw) / 1e6:.2f}M ({cfg.model.g_act}), D {count_parameters(d_raw) / 1e6:.2f}M "
              f"({cfg.model.d_act}); batch {cfg.train.batch_size} on {world} process(es) on {dev}; "
              f"steps {start} → {cfg.steps}", flush=True)
        if data.notes:
            print(data.notes, flush=True)
    if start >= cfg.steps:
        return run

    # -- periodic FID (main process only; off unless train.fid_every) -----------------------------
    scorer = None

    def periodic_fid(step: int) -> dict:
        nonlocal scorer
        if scorer is None:
            from apps.gan.scoring import Scorer

            scorer = Scorer(cfg.eval, data, dev, log=lambda m: tqdm.write(m))
        g_eval = sampling_copy(sampler_model)
        value = scorer.quick_fid(g_eval, cfg.train.fid_samples, cfg.eval.seed)
        return {"step": step, "fid": value, "fid_samples": cfg.train.fid_samples,
                "fid_extractor": scorer.info["name"], "fid_extractor_hash": scorer.info["hash"]}

    # -- the loop --------------------------------------------------------------------------------
    tracker = Tracker(cfg.train.tracker, run, main)
    loader = batch_loader(data.train, StepBatches(cfg.seed, n, cfg.train.batch_size, start, cfg.steps, rank, world),
                          cfg.data.workers)
    bar = tqdm(total=cfg.steps, initial=start, disable=not (main and cfg.train.progress), desc="train",
               dynamic_ncols=True)
    one_step = Stepper(G, D, g_raw, d_raw, opt_g, opt_d, accelerator, cfg.optim.loss, cfg.seed,
                       cfg.train.batch_size, ema, probes, remedies, guard,
                       augment_shift=round(cfg.train.augment * cfg.data.image_size),
                       r1_gamma=cfg.optim.r1_gamma, r1_every=cfg.optim.r1_every)
    sums = one_step.sums  # loss_d, loss_g, D(x), D(G(z)) summed on the device since the last log
    t_last, n_since, last_good, acted = time.time(), 0, run.latest_checkpoint(), {}

    def window_sums() -> torch.Tensor:
        """The open logging window's sums, averaged over processes (every process must call)."""
        return (accelerator.reduce(sums.clone(), "sum") / world if world > 1 else sums).cpu().clone()

    if state is not None and "log_sums" in state["extra"]:  # a window that straddles the checkpoint
        sums += state["extra"]["log_sums"].to(dev)
        n_since = int(state["extra"]["log_steps"])
    G.train()
    D.train()
    for step, (real_u8, _) in zip(range(start, cfg.steps), loader):
        factor = lr_factor(cfg.optim, step, cfg.steps)
        for opt, base in ((opt_g, cfg.optim.lr_g), (opt_d, cfg.optim.lr_d)):
            for group in opt.param_groups:
                group["lr"] = base * factor
        one_step(step, real_u8)
        done, n_since = step + 1, n_since + 1
        bar.update(1)
        fault_point("after_step", done)

        if guard.due(done):
            guard.check(done, str(last_good) if last_good else None)
        if probes.ready():
            run.log_probes(probes.read(reduce=(lambda t: accelerator.reduce(t, "sum")) if world > 1 else None))
        for key, count in remedies.after_step(step).items():  # kick / ReDo act on the window just read
            acted[key] = acted.get(key, 0) + count
        if done % cfg.train.log_every == 0 or done == cfg.steps:
            total = (accelerator.reduce(sums, "sum") / world if world > 1 else sums).tolist()
            ld, lg, dr, df = (v / n_since for v in total)
            elapsed = time.time() - t_last
            rec = {"step": done, "loss_d": ld, "loss_g": lg, "d_real": dr, "d_fake": df,
                   "lr": cfg.optim.lr_g * factor, "lr_d": cfg.optim.lr_d * factor,
                   "images_per_s": n_since * cfg.train.batch_size / max(elapsed, 1e-9),
                   "epoch": done * cfg.train.batch_size // n, **acted}
            run.log_metrics(rec)
            tracker.log(rec, done)
            bar.set_postfix(loss_d=f"{ld:.3f}", loss_g=f"{lg:.3f}")
            sums.zero_()
            t_last, n_since, acted = time.time(), 0, {}
            if not all(map(lambda v: v == v and abs(v) != float("inf"), (ld, lg))):
                guard.update(torch.tensor(float("nan")))  # already synced: stop now, not at the next check
                guard.check(done, str(last_good) if last_good else None)
        if main and (done == cfg.steps or (cfg.train.sample_every and done % cfg.train.sample_every == 0)):
            grid = sampling_copy(sampler_model).requires_grad_(False)
            images = grid(noise(GRID_SIZE, cfg.model.nz, fixed_seed, dev)).float().cpu()
            save_grid(images, run.path / "samples" / f"step_{done:08d}.png")
            if done == cfg.steps:
                save_grid(images, run.path / "samples" / "final.png")
        if cfg.train.fid_every and (done % cfg.train.fid_every == 0 or done == cfg.steps):
            if main:
                rec = periodic_fid(done)
                run.log_metrics(rec)
                tracker.log({"fid": rec["fid"]}, done)
                bar.write(f"step {done}: FID {rec['fid']:.3f} ({rec['fid_extractor']}, {rec['fid_samples']} images)")
            accelerator.wait_for_everyone()
        if done % cfg.train.checkpoint_every == 0 or done == cfg.steps:
            guard.check(done, str(last_good) if last_good else None)  # never save a diverged model
            last_good = run.save_checkpoint(done, models, {"G": opt_g, "D": opt_d},
                                            extra={"probes": probes.state_dict(), "remedies": remedies.state_dict(),
                                                   "log_sums": window_sums(), "log_steps": n_since},
                                            keep=cfg.train.keep_checkpoints)
    bar.close()
    tracker.close()
    probes.detach()
    remedies.remove()
    accelerator.wait_for_everyone()
    return run


def main(argv: Sequence[str]) -> int:
    cfg, args = parse_cli(
        GanConfig, argv, app=APP, description="Train a DCGAN.",
        extra_args=lambda p: p.add_argument("--allow-config-change", action="store_true",
                                            help="resume an existing run directory even though its config differs"),
    )
    train(cfg, allow_config_change=args.allow_config_change)
    return 0


if __name__ == "__main__":
    cli(main)
