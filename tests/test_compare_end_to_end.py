"""One real comparison of both real apps, end to end: ``python -m apps.compare`` trains and
evaluates tiny runs with the apps' own commands (no stand-in interpreter), then writes the
report; summary.json must hold every study's metrics, per variant, read from those runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apps.compare.main import main

ROOT = Path(__file__).resolve().parents[1]

# A few seconds of CPU per process: 3 steps of narrow nets, an evaluation of a few dozen images
# (with a one-epoch feature classifier) and of four sentences decoded greedily.
TINY_GAN = {
    "data": {"image_size": 8, "max_images": 200},
    "model": {"nz": 8, "ngf": 4, "ndf": 4, "latent_classes": 0},
    "optim": {"schedule": "constant", "r1_gamma": 0.0},
    "train": {"batch_size": 16, "ema_decay": 0.0, "augment": 0.0, "log_every": 1, "sample_every": 0,
              "checkpoint_every": 3, "check_every": 1, "progress": False, "tracker": "none", "fid_every": 0},
    "eval": {"num_fake": 20, "num_real": 40, "num_class_samples": 20, "kid_subsets": 2, "kid_subset_size": 10,
             "batch_size": 20, "classifier": {"epochs": 1, "width": 4, "features": 8}},
    "probes": {"every": 1, "window": 1},
}
TINY_MT = {
    "tokenizer": {"vocab_size": 200},
    "model": {"d_model": 16, "heads": 2, "enc_layers": 1, "dec_layers": 1, "d_ff": 32, "dropout": 0.0},
    "optim": {"warmup": 1},
    "train": {"max_tokens": 256, "log_every": 1, "eval_every": 3, "eval_sentences": 4, "checkpoint_every": 3,
              "check_every": 1, "progress": False, "tracker": "none"},
    "probes": {"every": 1, "window": 1},
}


@pytest.mark.slow
def test_both_real_apps_compare_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)  # anything a cell writes outside its run directory lands here
    monkeypatch.setenv("LEAKYLAB_CACHE", str(tmp_path / "cache"))  # the feature classifier
    monkeypatch.delenv("LEAKYLAB_COMPARE_PYTHON", raising=False)  # the real apps, with this interpreter
    preset = tmp_path / "both.yaml"
    preset.write_text(json.dumps({
        "title": "both apps, tiny", "seeds": [0], "jobs": 2, "examples": 2,
        "out": str(tmp_path / "runs"), "report": str(tmp_path / "rep"),
        "studies": {
            "img": {"app": "gan", "config": str(ROOT / "configs/gan/digits.yaml"), "steps": 3,
                    "seconds_per_cell": 5, "overrides": TINY_GAN,
                    "variants": {"relu": {"model.g_act": "relu", "model.g_act_params": {}},
                                 "leaky": {"model.g_act": "leaky_relu", "model.g_act_params": {"alpha": 0.2}}}},
            "mt": {"app": "translation", "config": str(ROOT / "configs/translation/embedded.yaml"), "steps": 3,
                   "seconds_per_cell": 5, "overrides": TINY_MT, "eval_args": ["--num", 4, "--beam", 1],
                   "variants": {"relu": {"model.activation": "relu", "model.act_params": {}},
                                "leaky": {"model.activation": "leaky_relu", "model.act_params": {"alpha": 0.2}}}},
        },
    }))

    assert main(["--config", str(preset)]) == 0, capsys.readouterr()
    printed = capsys.readouterr().out
    assert "(4/4 cells complete)" in printed

    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert [r["status"] for r in summary["cells"]] == ["complete"] * 4
    studies = {s["name"]: s for s in summary["studies"]}
    expected = {"img": ({"fid", "kid_mean", "dead_frac.G"}, {"fid_floor", "classes_covered"}),
                "mt": ({"bleu", "chrf", "dead_frac.encoder", "dead_frac.decoder"}, set())}
    for name, (tested, descriptive) in expected.items():
        study = studies[name]
        assert {m["key"] for m in study["metrics"] if m["tested"]} == tested, name
        assert descriptive <= {m["key"] for m in study["metrics"] if not m["tested"]}, name
        for v in study["variants"]:
            assert v["cells_complete"] == 1 and set(v["metrics"]) >= tested | descriptive, (name, v["name"])
            assert all(m["n"] == 1 and set(m["values"]) == {"0"} for m in v["metrics"].values())
            assert v["cost"]["train_s"] > 0 and v["cost"]["throughput"][0] > 0
        assert {(c["variant"], c["metric"]) for c in study["comparisons"]} == {("leaky", k) for k in tested}
        assert all(c["verdict"] == "untestable" for c in study["comparisons"])  # one seed: no test, said so

    img = studies["img"]
    assert img["extractor"]["name"] == "classifier" and "classifier" in img["extractor_note"]
    assert img["variants"][0]["cost"]["throughput"][1] == "images/s"
    # each variant's value is its own run's eval.json
    for v in img["variants"]:
        ev = json.loads((tmp_path / "runs" / "img" / v["name"] / "seed0" / "run" / "eval.json").read_text())
        assert v["metrics"]["fid"]["mean"] == pytest.approx(ev["fid"])
    mt = studies["mt"]
    assert mt["extractor"] is None and mt["variants"][0]["cost"]["throughput"][1] == "tokens/s"

    md = (tmp_path / "rep" / "report.md").read_text()
    assert "figures/img_samples_leaky.png" in md and (tmp_path / "rep" / "figures" / "img_samples_leaky.png").is_file()
    assert "### Translation examples" in md and "| line | source | reference | relu | leaky |" in md
    assert (tmp_path / "rep" / "report.html").is_file()
