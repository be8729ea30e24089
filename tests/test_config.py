"""The shared config mechanism: typed schemas, YAML + overrides, one-line errors, exit codes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Literal, Optional

import pytest

from common.config import ConfigError, RunConfig, config_to_dict, load_config, require
from common.errors import UserError


@dataclass
class Model:
    act: Literal["relu", "leaky_relu"] = "relu"
    alpha: float = 0.2
    widths: list[int] = field(default_factory=lambda: [8, 16])
    dropout: Optional[float] = None

    def __post_init__(self) -> None:
        require(self.alpha >= 0, "alpha", "must be >= 0", self.alpha)


@dataclass
class Cfg(RunConfig):
    model: Model = field(default_factory=Model)


def test_yaml_and_overrides(tmp_path):
    f = tmp_path / "quick.yaml"
    f.write_text("seed: 3\nmodel:\n  act: leaky_relu\n  alpha: 1\n")
    cfg = load_config(Cfg, f, ["model.alpha=0.01", "steps=7", "model.widths=[1, 2, 3]"], app="gan")
    assert cfg.seed == 3 and cfg.steps == 7
    assert cfg.model.act == "leaky_relu" and cfg.model.alpha == 0.01 and isinstance(cfg.model.alpha, float)
    assert cfg.model.widths == [1, 2, 3]
    assert cfg.out == "runs/gan/quick"  # default run directory from the config's name
    assert config_to_dict(cfg)["model"]["alpha"] == 0.01


@pytest.mark.parametrize(
    "override, message",
    [
        (["model.x=1"], "unknown config key 'model.x' (allowed here: act, alpha, widths, dropout)"),
        (["bogus=1"], "unknown config key 'bogus' (allowed here: out, seed, steps, model)"),
        (["seed=abc"], "config key 'seed': must be an integer (got 'abc')"),
        (["seed=1.5"], "config key 'seed': must be an integer (got 1.5)"),
        (["steps=0"], "config key 'steps': must be >= 1 (got 0)"),
        (["model.alpha=-0.1"], "config key 'model.alpha': must be >= 0 (got -0.1)"),
        (["model.act=tanh"], "config key 'model.act': must be one of 'relu', 'leaky_relu' (got 'tanh')"),
        (["model.alpha=yes"], "config key 'model.alpha': must be a number (got 'yes')"),
        (["model.alpha=1e-3", "model.act=no"], "config key 'model.act': must be one of 'relu', 'leaky_relu' (got 'no')"),
        (["model.widths=3"], "config key 'model.widths': must be a list (got 3)"),
        (["model.widths=[1, x]"], "config key 'model.widths[1]': must be an integer (got 'x')"),
        (["model=1"], "config key 'model': must be a mapping of its own keys (got 1)"),
        (["seed"], "override 'seed' is not of the form key=value (e.g. seed=1)"),
    ],
)
def test_bad_values_name_the_key(override, message):
    with pytest.raises(UserError) as info:
        load_config(Cfg, None, override, app="gan")
    assert str(info.value) == message


def test_optional_and_errors_are_config_errors():
    assert load_config(Cfg, None, ["model.dropout=0.1"], app="gan").model.dropout == 0.1
    assert load_config(Cfg, None, ["model.dropout=null"], app="gan").model.dropout is None
    with pytest.raises(ConfigError):
        load_config(Cfg, None, ["model.alpha=-1"], app="gan")


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_config(Cfg, tmp_path / "nope.yaml", [], app="gan")
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [1,\n")
    with pytest.raises(UserError, match="is not valid YAML"):
        load_config(Cfg, bad, [], app="gan")
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(UserError, match="must hold a mapping"):
        load_config(Cfg, lst, [], app="gan")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True)


def test_cli_user_error_is_one_line_exit_2_and_bugs_keep_traceback():
    user = _run(
        """
        from common.errors import cli, UserError
        def main(argv):
            raise UserError("config key 'x': must be >= 0")
        cli(main)
        """
    )
    assert user.returncode == 2
    assert user.stderr == "error: config key 'x': must be >= 0\n"
    bug = _run(
        """
        from common.errors import cli
        def main(argv):
            return {}["missing"]
        cli(main)
        """
    )
    assert bug.returncode == 1
    assert "Traceback" in bug.stderr and "KeyError" in bug.stderr
