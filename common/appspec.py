"""What an app is to the tools that drive it (the comparison runner above all), said once.

An app describes itself with an :class:`AppSpec`: its config schema, its train and evaluate
commands, the metrics its ``eval.json`` holds and which way is better, which of them are scored
with a feature extractor, the model parts its probes watch, and how to show a few examples of
what its runs made. Tools then treat every app alike and never branch on an app's name, so a new
app joins by registering a description — nothing else changes.

The description is cheap to import on purpose: the schema is named by import path (importing an
app pulls in torch and its data code), and the callables import what they need when called.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, Union

from common.errors import UserError

# variant → metric key → seed → value: what an app's sanity checks look at.
PerVariant = Mapping[str, Mapping[str, Mapping[int, float]]]
# "package.module:ClassName", or a callable returning the class.
SchemaRef = Union[str, Callable[[], type]]

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
PROBE_STATS = ("dead_frac", "dormant_frac")


@dataclass(frozen=True)
class MetricDef:
    """A metric of ``eval.json``: how it is named in a report and which way is better."""

    key: str
    label: str
    lower_is_better: bool
    unit: str = ""  # how a difference is spoken of ("FID", "BLEU"; "" for fractions)
    delta: float | None = None
    """The smallest difference that matters (δ, > 0), in the metric's units — or, when
    ``relative``, as a fraction of the baseline's mean. None: significance alone decides."""
    relative: bool = False
    curve: str | None = None
    """The ``metrics.jsonl`` key of this metric's evaluation curve during training (e.g. greedy
    validation BLEU for BLEU), from which a report judges whether training had flattened."""

    def __post_init__(self) -> None:
        if self.delta is not None and not self.delta > 0:
            raise ValueError(f"metric {self.key!r}: delta must be > 0 (got {self.delta!r})")


@dataclass(frozen=True)
class ExampleRun:
    """One finished run offered to an app's ``examples``: whose it is and what it left on disk."""

    variant: str
    seed: int
    run_dir: Path
    eval: Mapping[str, Any]
    config: Mapping[str, Any] | None  # the run's config.yaml, None when unreadable


@dataclass(frozen=True)
class Examples:
    """What an app shows of its runs side by side: one image per variant, or a table.

    ``images`` pairs a variant with an image file of its run; ``header``/``rows`` are a table
    whose columns the app chooses (e.g. a source sentence, then one translation per variant).
    """

    heading: str
    caption: str
    images: tuple[tuple[str, Path], ...] = ()
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class AppSpec:
    """Everything a tool needs to train, evaluate and report one app without naming it."""

    name: str
    """The app's name in presets and run directories (``app: <name>``)."""
    config_schema: SchemaRef
    """The app's root config dataclass, as ``"module:Class"`` or a callable returning it."""
    train_module: str
    """``python -m <train_module> --config FILE key=value ...`` trains (or resumes) a run."""
    evaluate_module: str
    """``python -m <evaluate_module> --run RUN_DIR ...`` writes the run's ``eval.json``."""
    headline: tuple[MetricDef, ...] = ()
    """``eval.json`` metrics compared with a baseline unless a preset lists its own."""
    descriptive: tuple[MetricDef, ...] = ()
    """``eval.json`` metrics shown for context, never tested."""
    extractor_metrics: frozenset[str] = frozenset()
    """Metrics computed with the evaluation's feature extractor (``eval.json``'s ``extractor``):
    labelled with it, and never pooled across runs scored with different extractors."""
    probed_parts: tuple[str, ...] = ()
    """Model parts the trainer hands to the probes, by name (``probes.jsonl``'s ``model``)."""
    headline_probes: tuple[str, ...] = ()
    """Probe metrics compared by default: ``<stat>.<part>``, or ``<stat>.*`` for every part probed."""
    throughput: tuple[tuple[str, str], ...] = ()
    """``metrics.jsonl`` keys of the app's own speed figure and their unit, preferred first."""
    examples: Callable[[Sequence[ExampleRun], int], Examples | None] | None = None
    """``examples(runs, k)``: up to ``k`` illustrations of the runs (one per variant, one seed)."""
    checks: tuple[Callable[[PerVariant], list[str]], ...] = ()
    """Sanity checks of a study's values: each returns warnings (one sentence each) for the report."""
    describe_extractor: Callable[[Mapping[str, Any], Mapping[str, Any]], str] | None = None
    """``describe_extractor(extractor, eval_record)``: a note on what the extractor's scores mean."""
    shares_disk_cache: bool = True
    """Whether a run builds a per-dataset cache on disk that later runs reuse (the GAN's evaluation
    classifier). A comparison then runs a study's first cell alone, so the cache is built once
    instead of by several processes racing; an app whose runs share nothing on disk sets False
    and its cells start together."""

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(f"app name {self.name!r}: lower-case letters, digits and _ only")
        if not self.train_module or not self.evaluate_module:
            raise ValueError(f"app {self.name!r}: train_module and evaluate_module are required")
        keys = [m.key for m in (*self.headline, *self.descriptive)]
        if len(set(keys)) != len(keys):
            raise ValueError(f"app {self.name!r}: a metric is listed twice in {keys}")
        if not self.extractor_metrics <= set(keys):
            raise ValueError(f"app {self.name!r}: extractor_metrics {sorted(self.extractor_metrics - set(keys))} "
                             "are not among its metrics")
        for key in self.headline_probes:
            stat, _, part = key.partition(".")
            if stat not in PROBE_STATS or not part:
                raise ValueError(f"app {self.name!r}: headline probe {key!r} is not <{'|'.join(PROBE_STATS)}>.<part>")

    def schema(self) -> type:
        """The config dataclass (imports the app's config module on first use)."""
        if callable(self.config_schema):
            return self.config_schema()
        module, _, cls = self.config_schema.partition(":")
        return getattr(importlib.import_module(module), cls)

    def metric(self, key: str) -> MetricDef | None:
        """The definition of one of the app's eval metrics, or None."""
        return next((m for m in (*self.headline, *self.descriptive) if m.key == key), None)

    @property
    def default_metrics(self) -> list[str]:
        """Metric keys a study of this app compares when its preset lists none."""
        return [m.key for m in self.headline] + list(self.headline_probes)

    @property
    def descriptive_metrics(self) -> list[str]:
        return [m.key for m in self.descriptive]


_REGISTRY: dict[str, AppSpec] = {}


def register_app(spec: AppSpec) -> AppSpec:
    """Make ``spec`` known under its name; a second, different spec of that name is refused."""
    old = _REGISTRY.get(spec.name)
    if old is not None and old != spec:
        raise ValueError(f"app {spec.name!r} is already registered with another description")
    _REGISTRY[spec.name] = spec
    return spec


def unregister_app(name: str) -> None:
    """Forget an app (tests that register a throw-away app clean up with this)."""
    _REGISTRY.pop(name, None)


def app_names() -> tuple[str, ...]:
    """Names of the registered apps, in registration order."""
    return tuple(_REGISTRY)


def get_app(name: str) -> AppSpec:
    """The description of app ``name``; a clear error when no app of that name is registered."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(_REGISTRY) or "none"
        raise UserError(f"unknown app '{name}' (registered apps: {known})") from None
