"""The matrix: cells, their commands, completeness, and the learning-rate sweep expansion."""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

import pytest

from apps.compare.config import CompareConfig
from apps.compare.matrix import build_matrix, render_value, study_variants
from common.config import ConfigError, config_from_dict, parse_override


def _cfg(tmp: Path, **study: object) -> CompareConfig:
    base = {"app": "translation", "config": "configs/translation/embedded.yaml", "steps": 50, "baseline": "relu",
            "variants": {"relu": {"model.activation": "relu", "model.act_params": {}},
                         "leaky": {"model.activation": "leaky_relu", "model.act_params.alpha": 0.2}}}
    base.update(study)
    return config_from_dict(CompareConfig, {"out": str(tmp), "seeds": [3, 4], "studies": {"mt": base}})


def test_cells_and_the_commands_that_reproduce_them(tmp_path: Path) -> None:
    cells = build_matrix(_cfg(tmp_path))
    assert [c.key for c in cells] == ["mt/relu/seed3", "mt/leaky/seed3", "mt/relu/seed4", "mt/leaky/seed4"]
    leaky = cells[1]
    assert leaky.run_dir == tmp_path / "mt" / "leaky" / "seed3" / "run"
    train, evaluate = leaky.commands(threads=1)
    argv = shlex.split(train)
    assert argv[:5] == ["OMP_NUM_THREADS=1", "python", "-m", "apps.translation.train", "--config"]
    assert f"out={leaky.run_dir}" in argv and "seed=3" in argv and "steps=50" in argv
    assert "model.activation=leaky_relu" in argv and "model.act_params.alpha=0.2" in argv
    assert shlex.split(evaluate)[1:] == ["python", "-m", "apps.translation.evaluate", "--run", str(leaky.run_dir)]
    assert "model.act_params={}" in cells[0].commands()[0]


def test_complete_means_evaluated_at_the_final_step(tmp_path: Path) -> None:
    cell = build_matrix(_cfg(tmp_path))[0]
    assert not cell.is_complete()
    cell.run_dir.mkdir(parents=True)
    (cell.run_dir / "eval.json").write_text(json.dumps({"step": 40}))
    assert not cell.is_complete()  # evaluated before the run was extended to 50 steps
    (cell.run_dir / "eval.json").write_text("{torn")
    assert not cell.is_complete()
    (cell.run_dir / "eval.json").write_text(json.dumps({"step": 50}))
    assert cell.is_complete()
    # evaluated by the runner with other evaluate arguments: evaluate again (training is done)
    (cell.dir / "cell.json").write_text(json.dumps({"eval_args": ["--split", "valid"]}))
    assert not cell.is_complete()
    (cell.dir / "cell.json").write_text(json.dumps({"eval_args": []}))
    assert cell.is_complete()


def test_learning_rate_sweep_pairs_each_variant_with_the_baseline_at_the_same_rate(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, lr_sweep={"optim.lr": [3e-4, 1e-3]})
    arms = study_variants(cfg.studies["mt"])
    assert [(a.name, a.baseline) for a in arms] == [
        ("relu@lr0.0003", "relu@lr0.0003"), ("leaky@lr0.0003", "relu@lr0.0003"),
        ("relu@lr0.001", "relu@lr0.001"), ("leaky@lr0.001", "relu@lr0.001")]
    assert dict(arms[3].overrides)["optim.lr"] == 1e-3
    assert dict(arms[3].overrides)["model.activation"] == "leaky_relu"
    assert len(build_matrix(cfg)) == 8
    with pytest.raises(ConfigError, match="same length"):
        _cfg(tmp_path, lr_sweep={"optim.lr": [1e-3], "optim.warmup": [1, 2]})


def test_bad_studies_are_refused_with_the_key_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="studies.mt.baseline"):
        _cfg(tmp_path, baseline="gelu")
    with pytest.raises(ConfigError, match="studies.mt.variants.a b"):
        _cfg(tmp_path, variants={"relu": {}, "a b": {}})
    with pytest.raises(ConfigError, match="set by the runner"):
        _cfg(tmp_path, overrides={"steps": 3})


def test_override_values_round_trip_through_the_app_parser() -> None:
    for value in ["leaky_relu", "1e-3", "true", "no", "", "a b", 0.2, 3, True, None, 1e-4, {"alpha": 0.2}, [1, 2], {}]:
        assert parse_override(f"k={render_value(value)}")[1] == value
    assert math.isinf(parse_override(f"k={render_value(math.inf)}")[1])


def test_nested_overrides_set_leaves_not_sections(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, overrides={"optim": {"lr": 1e-3}},
               variants={"relu": {"model": {"activation": "relu", "act_params": {}}},
                         "leaky": {"model": {"activation": "leaky_relu", "act_params": {"alpha": 0.2}}}})
    relu, leaky = study_variants(cfg.studies["mt"])
    assert dict(relu.overrides) == {"optim.lr": 1e-3, "model.activation": "relu", "model.act_params": {}}
    assert dict(leaky.overrides)["model.act_params.alpha"] == 0.2
