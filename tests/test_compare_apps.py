"""Apps join the comparison through their description alone: a toy third app, written here and
named only in LEAKYLAB_APPS, runs a real ``python -m apps.compare`` end to end; apps/compare
itself names no app."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from apps import load_apps
from apps.compare.config import load_preset
from common.appspec import AppSpec, MetricDef, app_names, get_app, register_app, unregister_app
from common.config import ConfigError
from common.errors import UserError

ROOT = Path(__file__).resolve().parents[1]

# A whole app in five small files: a config schema, a trainer that writes a run directory the way
# the real apps do (marker, config, metrics, probes), an evaluator whose score depends on a
# variant's override and on the seed, and the description that tells the comparison all of it.
TOY = {
    "__init__.py": "",
    "config.py": """
        from dataclasses import dataclass, field

        from common.config import RunConfig, require


        @dataclass
        class ModelConfig:
            width: int = 8
            act: str = "relu"

            def __post_init__(self):
                require(self.width >= 1, "width", "must be >= 1", self.width)


        @dataclass
        class ToyConfig(RunConfig):
            model: ModelConfig = field(default_factory=ModelConfig)
        """,
    "train.py": """
        import json, sys, time
        from pathlib import Path

        from common.config import config_to_dict, dump_yaml, load_config
        from toyapp.config import ToyConfig

        assert sys.argv[1] == "--config", sys.argv
        cfg = load_config(ToyConfig, sys.argv[2], sys.argv[3:], app="toy")
        run = Path(cfg.out)
        run.mkdir(parents=True, exist_ok=True)
        (run / "leakylab.json").write_text(json.dumps({"app": "toy", "format": 1}))
        (run / "config.yaml").write_text(dump_yaml(config_to_dict(cfg)))
        with open(run / "metrics.jsonl", "w") as fh:
            for step in range(1, cfg.steps + 1):
                fh.write(json.dumps({"step": step, "time": time.time(), "loss": 1.0 / step,
                                     "items_per_s": 100.0 * cfg.model.width}) + "\\n")
        dead = 0.5 if cfg.model.act == "relu" else 0.1
        with open(run / "probes.jsonl", "w") as fh:
            for layer in ("block1.act", "block2.act"):
                fh.write(json.dumps({"step": cfg.steps, "model": "net", "layer": layer, "kind": cfg.model.act,
                                     "dead_frac": dead + 0.01 * cfg.seed}) + "\\n")
        """,
    "evaluate.py": """
        import json, sys
        from pathlib import Path

        from common.config import yaml_load

        run = Path(sys.argv[sys.argv.index("--run") + 1])
        cfg = yaml_load((run / "config.yaml").read_text())
        score = 10.0 + cfg["model"]["width"] / 10 + cfg["seed"]  # the seed shifts both arms alike
        (run / "output.txt").write_text(f"{cfg['model']['act']} net of width {cfg['model']['width']}\\n")
        (run / "eval.json").write_text(json.dumps({"app": "toy", "step": cfg["steps"], "score": score}))
        """,
    "app.py": """
        from common.appspec import AppSpec, Examples, MetricDef, register_app


        def outputs(runs, k):
            rows = tuple((r.variant, (r.run_dir / "output.txt").read_text().strip()) for r in runs)
            return Examples("What each variant said", f"seed {runs[0].seed}", header=("variant", "output"), rows=rows)


        def suspiciously_high(per_variant):
            return [f"{name}: toy score above 13 on seed(s) {sorted(s for s, v in vals['score'].items() if v > 13)}"
                    for name, vals in per_variant.items() if any(v > 13 for v in vals.get("score", {}).values())]


        register_app(AppSpec(
            name="toy", config_schema="toyapp.config:ToyConfig",
            train_module="toyapp.train", evaluate_module="toyapp.evaluate",
            headline=(MetricDef("score", "toy score", False, "points"),),
            probed_parts=("net",), headline_probes=("dead_frac.*",),
            throughput=(("items_per_s", "items/s"),),
            examples=outputs, checks=(suspiciously_high,),
        ))
        """,
}


def write_toy_app(root: Path) -> None:
    pkg = root / "toyapp"
    pkg.mkdir()
    for name, text in TOY.items():
        (pkg / name).write_text(textwrap.dedent(text).lstrip())


def test_a_third_app_runs_a_real_comparison_through_its_description_alone(tmp_path: Path) -> None:
    write_toy_app(tmp_path)
    (tmp_path / "toy.yaml").write_text("steps: 1\nmodel: {width: 8}\n")
    preset = tmp_path / "toy_preset.yaml"
    preset.write_text(json.dumps({
        "title": "toy", "seeds": [0, 1], "jobs": 2, "out": str(tmp_path / "runs"), "report": str(tmp_path / "rep"),
        "studies": {"t": {"app": "toy", "config": "toy.yaml", "steps": 3, "seconds_per_cell": 1, "baseline": "narrow",
                          "variants": {"narrow": {"model.width": 20},
                                       "wide": {"model": {"width": 40, "act": "leaky"}}}}}}))
    env = dict(os.environ, LEAKYLAB_APPS="toyapp.app", PYTHONPATH=os.pathsep.join([str(ROOT), str(tmp_path)]))
    env.pop("LEAKYLAB_COMPARE_PYTHON", None)
    proc = subprocess.run([sys.executable, "-m", "apps.compare", "--config", str(preset)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[done 4/4]" in proc.stdout and ": score " in proc.stdout  # the toy's headline in the progress lines

    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    (study,) = summary["studies"]
    assert study["app"] == "toy" and study["extractor"] is None
    assert [m["key"] for m in study["metrics"]] == ["score", "dead_frac.net"]
    score = next(m for m in study["metrics"] if m["key"] == "score")
    assert score["label"] == "toy score" and score["lower_is_better"] is False and score["unit"] == "points"
    per = {v["name"]: v for v in study["variants"]}
    assert per["narrow"]["metrics"]["score"]["values"] == {"0": 12.0, "1": 13.0}
    assert per["wide"]["metrics"]["score"]["values"] == {"0": 14.0, "1": 15.0}
    assert per["wide"]["metrics"]["dead_frac.net"]["values"] == {"0": pytest.approx(0.1), "1": pytest.approx(0.11)}
    assert per["wide"]["cost"]["throughput"] == [4000.0, "items/s"]
    cmp = {c["metric"]: c for c in study["comparisons"]}
    assert cmp["score"]["diff"] == pytest.approx(2.0) and cmp["score"]["verdict"] == "better"  # higher is better
    assert cmp["dead_frac.net"]["diff"] == pytest.approx(-0.4) and cmp["dead_frac.net"]["verdict"] == "better"
    assert study["warnings"] == ["wide: toy score above 13 on seed(s) [0, 1]"]  # the app's own check
    assert study["dead_units"]["shows_up"] is True

    md = (tmp_path / "rep" / "report.md").read_text()
    assert "### What each variant said" in md and "| wide | leaky net of width 40 |" in md
    assert "python -m toyapp.train --config toy.yaml" in md and "python -m toyapp.evaluate --run" in md


def test_a_study_of_an_unknown_app_is_refused_naming_the_registered_ones(tmp_path: Path) -> None:
    preset = tmp_path / "p.yaml"
    preset.write_text(json.dumps({"studies": {"s": {"app": "nope", "config": "x.yaml", "variants": {"relu": {}}}}}))
    with pytest.raises(ConfigError, match=r"studies\.s\.app.*registered app \(gan, translation"):
        load_preset(preset)
    preset.write_text(json.dumps({"studies": {"s": {"config": "x.yaml", "variants": {"relu": {}}}}}))
    with pytest.raises(ConfigError, match=r"studies\.s\.app"):  # there is no default app
        load_preset(preset)


def test_apps_compare_names_no_app() -> None:
    names = load_apps()
    assert {"gan", "translation"} <= set(names)
    for path in sorted((ROOT / "apps" / "compare").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        for name in names:
            assert not re.search(rf"\b{name}", text, re.IGNORECASE), f"{path.name} names the app '{name}'"
            assert f"apps.{name}" not in text, f"{path.name} imports the app '{name}'"


def test_the_registry_refuses_unknown_names_and_conflicting_descriptions() -> None:
    load_apps()
    with pytest.raises(UserError, match="unknown app 'nope' .*registered apps: gan, translation"):
        get_app("nope")
    spec = get_app("gan")
    assert register_app(spec) is spec  # importing a description twice is harmless
    with pytest.raises(ValueError, match="already registered"):
        register_app(AppSpec("gan", "x:Y", "x.train", "x.evaluate"))
    with pytest.raises(ValueError, match="not among its metrics"):
        AppSpec("odd", "x:Y", "x.train", "x.evaluate", extractor_metrics=frozenset({"fid"}))
    with pytest.raises(ValueError, match="headline probe"):
        AppSpec("odd", "x:Y", "x.train", "x.evaluate", headline_probes=("loss.G",))
    extra = register_app(AppSpec("extra", lambda: dict, "x.train", "x.evaluate", headline=(MetricDef("m", "M", True),)))
    try:
        assert app_names()[-1] == "extra" and get_app("extra").schema() is dict
        assert extra.default_metrics == ["m"]
    finally:
        unregister_app("extra")
    assert "extra" not in app_names()
    assert get_app("translation").schema().__name__ == "TranslationConfig"  # imported lazily, on request
