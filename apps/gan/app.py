"""The DCGAN app as tools see it: commands, metrics, probed parts and sample grids.

Registered on import (see :mod:`apps`); imports nothing of the app itself, so it stays cheap.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from common.appspec import AppSpec, ExampleRun, Examples, MetricDef, PerVariant, register_app

# Sample grids by name, most preferred first; otherwise the latest samples/step_N.png.
GRID_NAMES = ("samples/final.png", "samples/grid.png")


def find_grid(run: Path) -> Path | None:
    """The run's final sample grid, if it wrote one."""
    for name in GRID_NAMES:
        if (run / name).is_file():
            return run / name
    found = list((run / "samples").glob("*.png")) if (run / "samples").is_dir() else []
    # The latest grid: samples/step_N.png, N not zero-padded, so compare the numbers.
    return max(found, key=_step_of, default=None)


def _step_of(path: Path) -> tuple[int, str]:
    digits = re.findall(r"\d+", path.stem)
    return (int(digits[-1]) if digits else -1, path.name)


def sample_grids(runs: Sequence[ExampleRun], k: int) -> Examples | None:
    """Each variant's last sample grid (evaluation and sampling share the latent noise)."""
    images = tuple((r.variant, grid) for r in runs if (grid := find_grid(r.run_dir)) is not None)
    if not images:
        return None
    seed = runs[0].seed
    return Examples("Samples", f"Generated samples at the end of training, seed {seed}, same latent noise for "
                               "every variant", images=images)


def below_floor(per_variant: PerVariant) -> list[str]:
    """A warning per variant whose FID is below the real-vs-real floor on some seed: its samples are
    closer to the training images than held-out real images are, which is how copying shows."""
    out = []
    for name, vals in per_variant.items():
        floors = vals.get("fid_floor", {})
        seeds = sorted(s for s, f in vals.get("fid", {}).items() if s in floors and f < floors[s])
        if seeds:
            out.append(f"{name}: FID below the real-vs-real floor on seed(s) {', '.join(map(str, seeds))}: "
                       "the samples are closer to the training images than held-out real images are, so the "
                       "generator may be copying its training set; a lower FID there is not a better generator.")
    return out


def describe_extractor(ex: Mapping[str, Any], ev: Mapping[str, Any]) -> str:
    """What the FIDs of these runs can be compared with."""
    acc = ex.get("heldout_accuracy")
    acc_s = f", held-out accuracy {acc:.1%}" if isinstance(acc, (int, float)) else ""
    text = (f"FID and KID here use the '{ex.get('name')}' feature extractor (hash {str(ex.get('hash', ''))[:12]}"
            f"{acc_s}) on {ev.get('num_real')} real vs {ev.get('num_fake')} generated images. They compare the "
            "variants of this report with each other; they are not comparable with FIDs computed with another "
            "extractor")
    if ex.get("name") != "inception":
        text += " (in particular not with published Inception FIDs)"
    return text + "."


SPEC = register_app(AppSpec(
    name="gan",
    config_schema="apps.gan.config:GanConfig",
    train_module="apps.gan.train",
    evaluate_module="apps.gan.evaluate",
    # δ: 5% of the baseline's FID (a published DCGAN's seed-to-seed spread on CIFAR-10 is ~1.5%,
    # so 5% is a difference a practitioner would act on); KID is noisier, 10%. The FID curve is
    # train.fid_every's periodic FID (fewer samples, so its level differs; its slope is what counts).
    headline=(MetricDef("fid", "FID", True, "FID", delta=0.05, relative=True, curve="fid"),
              MetricDef("kid_mean", "KID", True, "KID", delta=0.10, relative=True)),
    descriptive=(
        MetricDef("fid_floor", "real-vs-real FID floor", True, "FID"),
        MetricDef("classes_covered", "classes covered", False, "classes"),
        MetricDef("class_kl", "class KL to real", True, "nats"),
        MetricDef("confident_share", "share classified with confidence ≥ 0.9", False, ""),
    ),
    # All of them: FID/KID on the extractor's features, the class figures on its predictions.
    extractor_metrics=frozenset({"fid", "kid_mean", "fid_floor", "classes_covered", "class_kl", "confident_share"}),
    probed_parts=("G", "D"),
    headline_probes=("dead_frac.G",),  # the DCGAN recipe's D is leaky already: G is where units die
    throughput=(("images_per_s", "images/s"), ("img_per_s", "images/s")),
    examples=sample_grids,
    checks=(below_floor,),
    describe_extractor=describe_extractor,
))
