"""Typed run configs: dataclass schemas, YAML files and dotted ``key=value`` overrides.

Every app declares its config as nested dataclasses (a root subclassing :class:`RunConfig`).
The loader is strict on purpose: an unknown key, a wrong type or an impossible value is the
user's typo, so it ends with a :class:`ConfigError` naming the full dotted key and what is
allowed. Validation that needs values (``alpha >= 0``) lives in each dataclass's
``__post_init__`` via :func:`require`; the loader prefixes the section path to its key.
"""

from __future__ import annotations

import argparse
import re
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, Sequence, TypeVar, Union

import yaml

from common.errors import UserError

T = TypeVar("T")


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false, so `mixed_precision: no` stays a string."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
# YAML 1.1 reads `1e-3` as a string; users write learning rates that way.
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def yaml_load(text: str) -> Any:
    """Parse YAML text safely, with YAML 1.2 booleans."""
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


class ConfigError(UserError):
    """A config value the user must fix; ``key`` is the dotted path of the offending key."""

    def __init__(self, key: str, what: str):
        self.key = key
        self.what = what
        super().__init__(f"config key '{key}': {what}")

    def under(self, prefix: str) -> "ConfigError":
        return ConfigError(f"{prefix}.{self.key}" if prefix else self.key, self.what)


def require(cond: bool, key: str, what: str, got: Any = dataclasses.MISSING) -> None:
    """Raise a :class:`ConfigError` for ``key`` unless ``cond`` holds (``got`` is echoed)."""
    if not cond:
        suffix = "" if got is dataclasses.MISSING else f" (got {got!r})"
        raise ConfigError(key, what + suffix)


@dataclasses.dataclass
class RunConfig:
    """Keys every app understands."""

    out: str = ""
    """Run directory; empty means ``runs/<app>/<config file stem>``."""
    seed: int = 0
    """Seed of every random choice in the run (init, data order, noise)."""
    steps: int = 1000
    """Optimisation steps to train for; re-running with a larger value extends a run."""

    def __post_init__(self) -> None:
        require(self.seed >= 0, "seed", "must be >= 0", self.seed)
        require(self.steps >= 1, "steps", "must be >= 1", self.steps)


# ---------------------------------------------------------------------------------------------
# dict -> dataclass with type checks


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        inner = " or ".join(_type_name(a) for a in args)
        return f"{inner} or null" if len(args) < len(typing.get_args(tp)) else inner
    if origin in (list, tuple):
        return "a list"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it (ints widened to float)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(key, f"must be {_type_name(tp)} of its own keys (got {value!r})")
        return _build(tp, value, key)
    if origin is Literal:
        # type must match too: YAML's `true` must not pass for a Literal[1]
        if not any(value == a and type(value) is type(a) for a in typing.get_args(tp)):
            raise ConfigError(key, f"must be {_type_name(tp)} (got {value!r})")
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(key, f"must be {_type_name(tp)} (got {value!r})")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, f"must be a list (got {value!r})")
        (item_tp, *_) = typing.get_args(tp) or (Any,)
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(key, f"must be a mapping (got {value!r})")
        _, val_tp = typing.get_args(tp) or (str, Any)
        return {str(k): _coerce(v, val_tp, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"must be true or false (got {value!r})")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"must be an integer (got {value!r})")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, f"must be a number (got {value!r})")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"must be a string (got {value!r})")
        return value
    raise TypeError(f"unsupported config annotation {tp!r} for {key}")  # a schema bug, not the user's


def _build(schema: type[T], data: dict, prefix: str = "") -> T:
    hints = typing.get_type_hints(schema)
    fields = {f.name: f for f in dataclasses.fields(schema) if f.init}
    for key in data:
        if key not in fields:
            full = f"{prefix}.{key}" if prefix else str(key)
            allowed = ", ".join(fields) or "none"
            raise UserError(f"unknown config key '{full}' (allowed here: {allowed})")
    kwargs = {}
    for name, value in data.items():
        full = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _coerce(value, hints[name], full)
    try:
        return schema(**kwargs)
    except ConfigError as exc:
        raise exc.under(prefix) from None


def config_from_dict(schema: type[T], data: dict) -> T:
    """Build and validate a config of type ``schema`` from a plain nested dict."""
    return _build(schema, data)


def config_to_dict(cfg: Any) -> dict:
    """The config as plain nested dicts/lists/scalars (YAML- and JSON-safe)."""
    return dataclasses.asdict(cfg)


# ---------------------------------------------------------------------------------------------
# files and overrides


def _set_dotted(data: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """``'model.alpha=0.2'`` → ``('model.alpha', 0.2)``; values are YAML scalars/lists."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not p for p in key.split(".")):
        raise UserError(f"override '{text}' is not of the form key=value (e.g. seed=1)")
    try:
        value = yaml_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def read_yaml(path: str | Path) -> dict:
    """A YAML mapping from ``path``; a missing, unreadable or non-mapping file is a UserError."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file '{p}' does not exist (configs live under configs/)")
    try:
        data = yaml_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise UserError(f"config file '{p}' is not valid YAML{line}; fix its syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file '{p}' must hold a mapping of keys, not {type(data).__name__}")
    return data


def load_config(
    schema: type[T], path: str | Path | None, overrides: Sequence[str] = (), *, app: str
) -> T:
    """Load ``path`` (optional), apply dotted overrides, validate, and resolve ``out``."""
    data = read_yaml(path) if path is not None else {}
    for text in overrides:
        key, value = parse_override(text)
        _set_dotted(data, key, value)
    cfg = config_from_dict(schema, data)
    if hasattr(cfg, "out") and not getattr(cfg, "out"):
        stem = Path(path).stem if path is not None else "default"
        cfg.out = str(Path("runs") / app / stem)
    return cfg


def parse_cli(
    schema: type[T],
    argv: Sequence[str],
    *,
    app: str,
    description: str = "",
    extra_args: Any = None,
) -> tuple[T, argparse.Namespace]:
    """Parse ``--config FILE [key=value ...]`` (plus app flags added by ``extra_args(parser)``)."""
    parser = argparse.ArgumentParser(prog=f"python -m apps.{app}.train", description=description)
    parser.add_argument("--config", help="YAML config file (configs/...)")
    parser.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. seed=1")
    if extra_args is not None:
        extra_args(parser)
    args = parser.parse_args(list(argv))
    return load_config(schema, args.config, args.overrides, app=app), args


def dump_yaml(data: dict) -> str:
    """Deterministic YAML text for a resolved config."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
