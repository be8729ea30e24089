"""Evaluate a trained generator: FID/KID with a named extractor, the real-vs-real floor, and the
class histogram; writes ``RUN/eval.json``.

    python -m apps.gan.evaluate --run runs/gan/digits
    python -m apps.gan.evaluate --run runs/gan/cifar10 eval.extractor=inception eval.inception_weights=pt_inception.pth
    python -m apps.gan.evaluate --run RUN --step 2000 --no-ema eval.num_fake=1000

Settings come from the run's own ``eval`` config section; trailing ``eval.key=value`` arguments
override them for this evaluation (they are recorded in eval.json, not in the run's config).
Every FID is written next to its extractor's name and hash: FIDs from different extractors
(a classifier-FID and an Inception FID, or two classifiers) are not comparable.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Sequence

import torch

from apps.gan.config import EvalConfig
from apps.gan.data import load_data
from apps.gan.runtime import APP, load_generator, pick_device
from apps.gan.sampling import sampling_copy
from apps.gan.scoring import Scorer, Shards
from common.config import config_from_dict, config_to_dict, parse_override
from common.errors import UserError, cli
from common.rundir import RunDir, atomic_write_text


def _set(d: dict, dotted: str, value: object) -> None:
    *parents, last = dotted.split(".")
    for p in parents:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise UserError(f"override '{dotted}': '{p}' is not a section")
    d[last] = value


def eval_settings(run_eval: dict, overrides: Sequence[str]) -> EvalConfig:
    """The run's eval section with ``eval.key=value`` overrides applied and validated."""
    data = json.loads(json.dumps(run_eval))  # deep copy
    for text in overrides:
        key, value = parse_override(text)
        if not key.startswith("eval."):
            raise UserError(f"override '{text}': only eval.* settings can change at evaluation time "
                            "(the model and data are the run's)")
        _set(data, key[len("eval."):], value)
    try:
        return config_from_dict(EvalConfig, data)
    except UserError as exc:
        raise UserError(str(exc).replace("config key '", "config key 'eval.").replace("key 'eval.eval.", "key 'eval.")) from None


def evaluate(run_path: str, overrides: Sequence[str] = (), step: int | None = None, use_ema: bool | None = None,
             cpu: bool = False, write: bool = True) -> dict:
    """Evaluate run ``run_path``; returns the eval.json record (and writes it unless ``write=False``).
    One that writes holds the run's lock: it is refused while a training or evaluation has it."""
    with RunDir.open(run_path, APP, write=write):
        return _evaluate(run_path, overrides, step, use_ema, cpu, write)


def _evaluate(run_path: str, overrides: Sequence[str], step: int | None, use_ema: bool | None, cpu: bool,
              write: bool) -> dict:
    t0 = time.time()
    loaded = load_generator(run_path, use_ema=True, step=step)  # validates the run first
    ev = eval_settings(config_to_dict(loaded.cfg)["eval"], overrides)
    if use_ema is None:
        use_ema = ev.use_ema
    if not use_ema and loaded.which == "G_ema":
        loaded = load_generator(run_path, use_ema=False, step=step)
    shards = Shards(distributed=True)  # under accelerate launch: each process scores a slice
    device = shards.device if shards.device is not None and not cpu else pick_device(cpu or loaded.cfg.train.cpu)
    torch.manual_seed(ev.seed)
    data = load_data(loaded.cfg.data)
    say = print if shards.is_main else (lambda m: None)
    say(f"evaluating {run_path} at step {loaded.step} ({loaded.which}) on {data.name}, {shards.world} process(es) "
        f"on {device}")
    scorer = Scorer(ev, data, device, log=say, shards=shards)
    g_eval = sampling_copy(loaded.generator, device)
    record = {"app": APP, "step": loaded.step, "generator": loaded.which, "dataset": data.name,
              "fingerprint": data.fingerprint, "seed": ev.seed, **scorer.score(g_eval),
              "processes": shards.world, "eval_config": config_to_dict(ev), "seconds": round(time.time() - t0, 2)}
    if write and shards.is_main:
        atomic_write_text(loaded.run.path / "eval.json", json.dumps(record, indent=1) + "\n")
    return record


def summary(rec: dict) -> str:
    """The one-line report of an eval record, with a warning when FID is below its floor."""
    ex = rec["extractor"]
    acc = f", held-out acc {ex['heldout_accuracy']:.4f}" if ex.get("heldout_accuracy") is not None else ""
    ratio = rec.get("fid_over_floor")
    over = f", ×{ratio:.2f}" if ratio is not None else ""
    line = (f"step {rec['step']} ({rec['generator']}): FID[{ex['name']} {ex['hash']}{acc}] {rec['fid']:.3f} "
            f"(floor {rec['fid_floor']:.3f}{over}), KID {rec['kid_mean']:.5f} ± "
            f"{rec['kid_std']:.5f}; {rec['num_fake']} fake vs {rec['num_real']} real")
    if rec.get("confident_share") is not None:
        line += (f"; classes covered {rec['classes_covered']}/{rec['num_classes']}, KL {rec['class_kl']:.4f}, "
                 f"confident {rec['confident_share']:.3f}, smallest class share {rec['min_class_share']:.3f}")
    if ratio is not None and ratio < 1:
        line += ("\nwarning: FID is below the real-vs-real floor: the samples are closer to the training "
                 "images than held-out real images are, so the generator may be copying its training set")
    return line


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m apps.gan.evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="run directory (the out= of a training run)")
    p.add_argument("--step", type=int, default=None, help="evaluate this checkpoint instead of the latest")
    p.add_argument("--no-ema", action="store_true", help="evaluate G even when the run has an EMA generator")
    p.add_argument("--cpu", action="store_true", help="run on the CPU even where a GPU exists")
    p.add_argument("overrides", nargs="*", help="eval.key=value settings for this evaluation")
    args = p.parse_args(list(argv))
    rec = evaluate(args.run, args.overrides, args.step, False if args.no_ema else None, args.cpu)
    if rec["processes"] == 1 or Shards(distributed=True).is_main:
        print(summary(rec))
        print(f"wrote {args.run}/eval.json")
    return 0


if __name__ == "__main__":
    cli(main)
