"""Generate images from a trained run: a grid PNG, individual images, or a latent interpolation.

    python -m apps.gan.sample --run runs/gan/digits                       # RUN/samples/sample.png, 64 images
    python -m apps.gan.sample --run RUN --num 100 --seed 3 --out grid.png
    python -m apps.gan.sample --run RUN --num 500 --images out/folder     # one PNG per image
    python -m apps.gan.sample --run RUN --interpolate --out walk.png      # 8 rows × 10 steps

The EMA generator is used when the run has one (``--no-ema`` for G). Sample ``i`` of seed ``s``
is always the same image of a given checkpoint, whatever ``--num``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from apps.gan.runtime import load_generator, pick_device
from apps.gan.sampling import generate, interpolate, sampling_copy, save_grid, save_images
from common.errors import UserError, cli


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m apps.gan.sample", description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="run directory (the out= of a training run)")
    p.add_argument("--num", type=int, default=64, help="number of images (default 64)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--out", default=None, help="grid PNG to write (default RUN/samples/sample.png)")
    p.add_argument("--nrow", type=int, default=None, help="images per grid row (default: square)")
    p.add_argument("--images", default=None, metavar="DIR", help="write one PNG per image into DIR instead")
    p.add_argument("--interpolate", action="store_true", help="latent interpolation strips instead of samples")
    p.add_argument("--steps", type=int, default=10, help="--interpolate: images per strip (default 10)")
    p.add_argument("--step", type=int, default=None, help="use this checkpoint instead of the latest")
    p.add_argument("--no-ema", action="store_true", help="use G even when the run has an EMA generator")
    p.add_argument("--cpu", action="store_true", help="run on the CPU even where a GPU exists")
    args = p.parse_args(list(argv))
    if args.num < 1:
        raise UserError(f"--num must be >= 1 (got {args.num})")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0 (got {args.seed})")
    if args.interpolate and args.steps < 2:
        raise UserError(f"--steps must be >= 2 (got {args.steps})")
    loaded = load_generator(args.run, use_ema=not args.no_ema, step=args.step)
    device = pick_device(args.cpu or loaded.cfg.train.cpu)
    g = sampling_copy(loaded.generator, device)
    if args.interpolate:
        rows = max(1, args.num // args.steps) if args.num != 64 else 8
        images = interpolate(g, args.seed, args.steps, rows, device)
        out = Path(args.out or loaded.run.path / "samples" / "interpolation.png")
        save_grid(images, out, nrow=args.steps)
        print(f"wrote {out}: {rows} interpolation strips of {args.steps} ({loaded.which}, step {loaded.step})")
        return 0
    images = generate(g, args.num, args.seed, 250, device)
    if args.images:
        try:
            paths = save_images(images, args.images)
        except OSError as exc:
            raise UserError(f"cannot write '{args.images}' ({exc.strerror}); choose another --images") from None
        print(f"wrote {len(paths)} images to {args.images} ({loaded.which}, step {loaded.step})")
        return 0
    out = Path(args.out or loaded.run.path / "samples" / "sample.png")
    if out.suffix.lower() != ".png":
        raise UserError(f"--out must be a .png file (got '{out}')")
    try:
        save_grid(images, out, nrow=args.nrow)
    except OSError as exc:
        raise UserError(f"cannot write '{out}' ({exc.strerror}); choose another --out") from None
    print(f"wrote {out}: {args.num} images ({loaded.which}, step {loaded.step})")
    return 0


if __name__ == "__main__":
    cli(main)
