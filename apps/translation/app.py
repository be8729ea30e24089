"""The translation app as tools see it: commands, metrics, probed parts and translation examples.

Registered on import (see :mod:`apps`); imports nothing of the app at module level, so it stays
cheap. The examples are the same test sentences translated by every variant: the evaluate
command writes its hypotheses beside ``eval.json``, one line per test sentence in test-set
order, so line i of every variant translates the same source. Sources and references come from
the app's own data loader with the run's config (exactly what was scored), or from files beside
the hypotheses when that fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from common.appspec import AppSpec, ExampleRun, Examples, MetricDef, register_app


def hypotheses(run: Path, rec: Mapping[str, Any] | None) -> list[str]:
    """The run's translations of the evaluated split, one per line ([] when it saved none)."""
    names = []
    if rec and isinstance(rec.get("hypotheses"), str):
        names.append(rec["hypotheses"])
    split = (rec or {}).get("split", "test")
    names += [f"hypotheses.{split}.txt", f"{split}.hyp", "hypotheses.txt"]
    for name in names:
        p = run / name
        if p.is_file():
            return p.read_text(encoding="utf-8", errors="replace").splitlines()
    return []


def _from_app(config: Mapping[str, Any] | None, split: str) -> tuple[list[str], list[str]]:
    """(sources, references) of ``split`` as the app loads them for this run's config."""
    try:
        from apps.translation.config import TranslationConfig
        from apps.translation.data import load_split
        from common.config import config_from_dict

        loaded = load_split(config_from_dict(TranslationConfig, dict(config or {})).data, split)
    except Exception:  # noqa: BLE001 - examples are illustration; a data problem must not sink the report
        return [], []
    return [s for s, _ in loaded.pairs], [t for _, t in loaded.pairs]


def _side_file(run: Path, split: str, kinds: tuple[str, ...]) -> list[str]:
    for kind in kinds:
        for name in (f"{kind}.{split}.txt", f"{split}.{kind}", f"{kind}.txt"):
            p = run / name
            if p.is_file():
                return p.read_text(encoding="utf-8", errors="replace").splitlines()
    return []


def pick_lines(n_lines: int, k: int) -> list[int]:
    """``k`` line indices spread evenly over the test set (deterministic, first line included)."""
    if n_lines <= 0 or k <= 0:
        return []
    k = min(k, n_lines)
    return sorted({round(i * (n_lines - 1) / max(1, k - 1)) for i in range(k)}) if k > 1 else [0]


def translation_examples(runs: Sequence[ExampleRun], k: int) -> Examples | None:
    """A table: line, source, reference, then each variant's translation of that line."""
    per_variant = {r.variant: (r, hyps) for r in runs if (hyps := hypotheses(r.run_dir, r.eval))}
    if not per_variant:
        return None
    first = next(iter(per_variant.values()))[0]
    split = str(first.eval.get("split", "test"))
    sources, refs = _from_app(first.config, split)
    if not sources:
        sources = _side_file(first.run_dir, split, ("sources", "src", "source"))
        refs = _side_file(first.run_dir, split, ("references", "ref", "reference"))
    n = min(len(h) for _, h in per_variant.values())
    rows = []
    for i in pick_lines(n, k):
        row = [str(i + 1)]
        row.append(sources[i] if i < len(sources) else "(source not saved)")
        row.append(refs[i] if i < len(refs) else "(reference not saved)")
        row += [hyps[i] for _, hyps in per_variant.values()]
        rows.append(tuple(row))
    if not rows:
        return None
    return Examples("Translation examples", f"the same test sentences translated by every variant (seed {first.seed})",
                    header=("line", "source", "reference", *per_variant), rows=tuple(rows))


SPEC = register_app(AppSpec(
    name="translation",
    config_schema="apps.translation.config:TranslationConfig",
    train_module="apps.translation.train",
    evaluate_module="apps.translation.evaluate",
    shares_disk_cache=False,  # tokenizer and generated corpus live in each run (or in memory)
    # δ = 1 point: below a BLEU/chrF point, human judges rarely agree which system is better
    # (and Multi30k's seed-to-seed spread is ±0.5–1). Curves: greedy scores on the validation
    # sentences the trainer logs every train.eval_every steps.
    headline=(MetricDef("bleu", "BLEU", False, "BLEU", delta=1.0, curve="valid_bleu"),
              MetricDef("chrf", "chrF", False, "chrF", delta=1.0, curve="valid_chrf")),
    # The FFN activation is the switch; encoder and decoder stacks are probed separately.
    probed_parts=("encoder", "decoder"),
    headline_probes=("dead_frac.*",),
    throughput=(("tokens_per_s", "tokens/s"), ("tok_per_s", "tokens/s")),
    examples=translation_examples,
))
