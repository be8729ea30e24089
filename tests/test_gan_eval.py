"""GAN sampling and evaluation: grids of the right size, FID/KID against a reference
implementation, class statistics on known inputs, and eval.json with its extractor named."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image

from apps.gan import evaluate as evaluate_cmd
from apps.gan import sample as sample_cmd
from apps.gan import train as train_cmd
from apps.gan.metrics import class_stats, fid, kid, kid_subset_size
from apps.gan.sampling import generate, sampling_copy
from apps.gan.model import Generator
from test_gan_train import tiny_args

TINY_CLASSIFIER = ["eval.classifier.width=4", "eval.classifier.features=8", "eval.classifier.epochs=1",
                   "eval.num_class_samples=50", "eval.kid_subsets=5", "eval.num_fake=60"]


def reference_fid(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(ca @ cb).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca) + np.trace(cb) - 2 * np.trace(covmean))


def test_fid_matches_the_closed_form_and_kid_is_near_zero_for_one_distribution():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(400, 6, generator=g, dtype=torch.float64)
    b = torch.randn(300, 6, generator=g, dtype=torch.float64) * 1.5 + 0.3
    assert fid(a, b) == pytest.approx(reference_fid(a.numpy(), b.numpy()), rel=1e-6)
    assert fid(a, a) == pytest.approx(0.0, abs=1e-6)
    same = kid(a[:200], a[200:], subsets=20, subset_size=100, seed=0)
    diff = kid(a, b, subsets=20, subset_size=100, seed=0)
    assert abs(same[0]) < diff[0] and diff[0] > 0
    assert kid(a, b, 20, 100, seed=0) == diff  # subsets drawn from the given seed
    assert kid_subset_size(0, 1348, 449) == 224 and kid_subset_size(5000, 300, 200) == 199


def test_class_stats_on_a_known_histogram():
    probs = torch.zeros(10, 3, dtype=torch.float64)
    probs[:5, 0] = 1.0  # 5 confident class-0 samples
    probs[5:9, 1] = 0.6
    probs[5:9, 2] = 0.4  # 4 unconfident class-1 samples
    probs[9, 2] = 1.0  # 1 class-2 sample
    real = torch.tensor([0, 1, 2] * 10)
    s = class_stats(probs, real, 3)
    assert s["class_shares"] == [0.5, 0.4, 0.1]
    assert s["classes_covered"] == 2  # class 2 has 0.1 < half of its real share 1/3
    assert s["confident_share"] == pytest.approx(0.6)
    expect_kl = sum(p * math.log(p * 3) for p in (0.5, 0.4, 0.1))
    assert s["class_kl"] == pytest.approx(expect_kl) and s["min_class_share"] == pytest.approx(0.1)


def test_sampling_is_deterministic_and_independent_of_batching():
    torch.manual_seed(0)
    g = Generator(8, 1, nz=8, ngf=4)
    ge = sampling_copy(g)
    state = torch.get_rng_state()
    a = generate(ge, 10, seed=3, batch=4)
    b = generate(ge, 10, seed=3, batch=10)
    assert torch.allclose(a, b, atol=1e-6) and a.shape == (10, 1, 8, 8)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is not touched
    assert ge.training is False and g.training is True


def test_sample_and_evaluate_a_trained_run(tmp_path, capsys):
    run = tmp_path / "run"
    train_cmd.main(tiny_args(run, 3, "train.ema_decay=0.9"))

    out = tmp_path / "grid.png"
    sample_cmd.main(["--run", str(run), "--num", "10", "--nrow", "5", "--out", str(out)])
    assert Image.open(out).size == (5 * (8 + 2) + 2, 2 * (8 + 2) + 2)  # 5×2 tiles of 8 px, 2 px padding
    sample_cmd.main(["--run", str(run), "--num", "3", "--images", str(tmp_path / "imgs")])
    assert sorted(p.name for p in (tmp_path / "imgs").iterdir()) == [f"sample_0000{i}.png" for i in range(3)]
    assert Image.open(tmp_path / "imgs" / "sample_00000.png").size == (8, 8)
    sample_cmd.main(["--run", str(run), "--interpolate", "--steps", "4", "--num", "8", "--out", str(tmp_path / "i.png")])
    assert Image.open(tmp_path / "i.png").size == (4 * 10 + 2, 2 * 10 + 2)

    cache = tmp_path / "cache"
    evaluate_cmd.main(["--run", str(run), f"eval.cache_dir={cache}", *TINY_CLASSIFIER])
    rec = json.loads((run / "eval.json").read_text())
    assert rec["app"] == "gan" and rec["step"] == 3 and rec["generator"] == "G_ema"
    assert rec["extractor"]["name"] == "classifier" and len(rec["extractor"]["hash"]) == 16
    assert 0.0 <= rec["extractor"]["heldout_accuracy"] <= 1.0
    for key in ("fid", "kid_mean", "kid_std", "fid_floor"):
        assert math.isfinite(rec[key]), key
    assert rec["fid"] > rec["fid_floor"] > 0  # 3 training steps are far from the real data
    assert rec["num_fake"] == rec["num_heldout"] == 60 and rec["num_real"] == 200  # data.max_images=200
    assert rec["num_class_samples"] == 50 and 0 <= rec["confident_share"] <= 1 and rec["classes_covered"] <= 10
    assert "FID[classifier" in capsys.readouterr().out
    assert len(list(cache.glob("classifier-*.safetensors"))) == 1
    again = evaluate_cmd.evaluate(str(run), [f"eval.cache_dir={cache}", *TINY_CLASSIFIER], write=False)
    assert again["fid"] == rec["fid"] and again["extractor"] == rec["extractor"]  # cached and deterministic
    assert "warning" not in evaluate_cmd.summary(rec)


def test_summary_warns_when_fid_is_below_its_floor():
    rec = {"step": 9, "generator": "G", "extractor": {"name": "classifier", "hash": "ab"}, "fid": 1.4,
           "fid_floor": 1.5, "fid_over_floor": 1.4 / 1.5, "kid_mean": 0.0, "kid_std": 0.0,
           "num_fake": 9, "num_real": 9}
    assert "×0.93" in evaluate_cmd.summary(rec) and "copying its training set" in evaluate_cmd.summary(rec)
    rec.update(fid=1.6, fid_over_floor=1.6 / 1.5)
    assert "warning" not in evaluate_cmd.summary(rec)
    rec.update(fid_floor=0.0, fid_over_floor=None)  # no ratio without a floor: reported, not a crash
    assert "FID[classifier ab] 1.600 (floor 0.000)" in evaluate_cmd.summary(rec)


def test_periodic_fid_during_training_is_logged_with_its_extractor(tmp_path):
    run = tmp_path / "run"
    train_cmd.main(tiny_args(run, 4, "train.fid_every=2", "train.fid_samples=40",
                             f"eval.cache_dir={tmp_path / 'cache'}", *TINY_CLASSIFIER))
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    fids = [r for r in recs if "fid" in r]
    assert [r["step"] for r in fids] == [2, 4]
    assert all(math.isfinite(r["fid"]) and r["fid_extractor"] == "classifier" and r["fid_samples"] == 40 for r in fids)
