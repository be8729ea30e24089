"""Translation examples side by side: the same test sentences, translated by every variant.

The evaluate command writes its hypotheses beside ``eval.json``, one line per test sentence in
test-set order, so line i of every variant translates the same source. Sources and references
come from the app's own data loader with the run's config (so they are exactly what was
scored), or from files beside the hypotheses when that fails.
"""

from __future__ import annotations

from pathlib import Path

from apps.compare.collect import CellData


def _from_app(data: CellData, split: str) -> tuple[list[str], list[str]]:
    """(sources, references) of ``split`` as the translation app loads them for this run."""
    try:
        from apps.translation.config import TranslationConfig
        from apps.translation.data import load_split
        from common.config import config_from_dict

        loaded = load_split(config_from_dict(TranslationConfig, dict(data.config or {})).data, split)
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


def translation_examples(study: dict, done: list[CellData], seed: int, k: int) -> tuple[list[list[str]], list[str]]:
    """(rows, header) of the examples table: source, reference, then one column per variant."""
    per_variant = {}
    for v in study["variants"]:
        c = next((c for c in done if c.cell.variant == v["name"] and c.cell.seed == seed and c.hypotheses), None)
        if c is not None:
            per_variant[v["name"]] = c
    if not per_variant:
        return [], []
    first = next(iter(per_variant.values()))
    split = str((first.eval or {}).get("split", "test"))
    sources, refs = _from_app(first, split)
    if not sources:
        sources = _side_file(first.cell.run_dir, split, ("sources", "src", "source"))
        refs = _side_file(first.cell.run_dir, split, ("references", "ref", "reference"))
    n = min(len(c.hypotheses) for c in per_variant.values())
    rows = []
    for i in pick_lines(n, k):
        row = [str(i + 1)]
        row.append(sources[i] if i < len(sources) else "(source not saved)")
        row.append(refs[i] if i < len(refs) else "(reference not saved)")
        row += [per_variant[name].hypotheses[i] for name in per_variant]
        rows.append(row)
    return rows, ["line", "source", "reference", *per_variant]
