"""``python -m apps.compare.findings [--check]``: the README's "What we found", from committed findings.

Every ``findings/<preset>/summary.json`` (written by ``python -m apps.compare --config P --export``)
becomes one block of the README between the markers below: a headline table per finding (each
variant's mean with its 95% interval, the paired difference with its interval, δ, the verdict, the
seeds, the budget check and the data), one sentence per comparison generated from its verdict, and
a link to the finding's full report. The numbers are never typed by hand: ``--check`` exits 1 when
the README's block differs from what the summaries give, and a test runs it on every change.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from apps.compare import budget
from apps.compare.procs import REPO_ROOT
from apps.compare.stats import fmt
from common.errors import UserError, cli

START, END = "<!-- findings:start -->", "<!-- findings:end -->"
PROBE_STATS = ("dead_frac.", "dormant_frac.")  # told by the dead-unit story, not the headline table
NONE_YET = ("No findings are committed yet. `python -m apps.compare --config configs/compare/<preset>.yaml "
            "--export` writes one to `findings/<preset>/`; `python -m apps.compare.findings` then lists it here.")


def load_findings(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    """(folder, summary) of every ``<root>/*/summary.json``, by folder name."""
    out = []
    for path in sorted(root.glob("*/summary.json")):
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: not readable as a comparison summary ({exc})") from None
        if not isinstance(summary, dict) or not isinstance(summary.get("studies"), list):
            raise UserError(f"{path}: not a comparison summary (no 'studies' list)")
        out.append((path.parent, summary))
    return out


def _metric(study: dict, key: str) -> dict:
    return next((m for m in study.get("metrics", []) if m.get("key") == key),
                {"key": key, "label": key, "lower_is_better": True, "unit": ""})


def _units(x: float | None, unit: str) -> str:
    return f"{fmt(x)} {unit}" if unit else fmt(x)


def _mean_ci(study: dict, variant: str, key: str) -> str:
    v = next((v for v in study.get("variants", []) if v.get("name") == variant), None)
    m = (v or {}).get("metrics", {}).get(key)
    if not m:
        return f"{variant}: n/a"
    ci = f" [{fmt(m['low'])}, {fmt(m['high'])}]" if m.get("low") is not None else ""
    return f"{variant}: {fmt(m['mean'])}{ci}"


def budget_text(study: dict) -> str:
    """The study's budget check in a few words: steps, then each checked metric's status."""
    checks = (study.get("budget") or {}).get("checks", [])

    def status(c: dict) -> str:
        rising = budget.still_improving(c.get("gains"), c.get("threshold")) if c["status"] == budget.STILL_IMPROVING else []
        return c["status"] + (f" ({', '.join(rising)})" if rising else "")

    each = "; ".join(f"{_metric(study, c['metric'])['label']} {status(c)}" for c in checks)
    return f"{study.get('steps')} steps, {each or 'no curve'}"


def data_text(study: dict) -> str:
    """The study's data: its app config file, and the feature extractor its scores depend on."""
    ex = study.get("extractor")
    config = Path(str(study.get("config")))
    if config.is_absolute() and config.is_relative_to(REPO_ROOT):  # the same file on any clone
        config = config.relative_to(REPO_ROOT)
    text = f"`{config.as_posix()}`"
    if isinstance(ex, dict):
        text += f", extractor {ex.get('name', '?')} {str(ex.get('hash', ''))[:12]}".rstrip()
    return text


def interpretation(study: dict, c: dict) -> str:
    """One comparison in one sentence, from its verdict and the study's budget check."""
    md = _metric(study, c["metric"])
    unit = md.get("unit") or ""
    control = " (A/A control)" if c.get("control") else ""
    head = f"{c['variant']} vs {c['baseline']}{control} on {md['label']}"
    verdict, delta = c["verdict"], c.get("delta")
    if verdict in ("better", "worse"):
        beyond = f", beyond δ ±{_units(delta, unit)}" if delta is not None else ""
        core = f"{verdict}: {_units(c['diff'], unit)} (95% CI {fmt(c['low'])} to {fmt(c['high'])}){beyond}"
    elif verdict == "equivalent":
        core = f"equivalent within ±{_units(delta, unit)}"
    elif verdict == "inconclusive":
        mde = f", MDE ≈ {_units(c['mde'], unit)}" if c.get("mde") is not None else ""
        core = f"inconclusive (difference {_units(c['diff'], unit)}{mde} with {c['n']} seeds)"
    else:
        core = f"untestable with {c.get('n', 0)} paired seed(s): run more seeds"
    tail = " — " + budget.qualifier(budget.reading_of(study, c))
    if c.get("control") and verdict in ("better", "worse"):
        tail += "; a failed A/A control, so distrust this study's other verdicts"
    return f"{head}: {core}{tail}."


def _row(study: dict, c: dict) -> list[str]:
    md = _metric(study, c["metric"])
    arrow = "↓" if md.get("lower_is_better") else "↑"
    diff = fmt(c.get("diff"))
    if c.get("low") is not None:
        diff += f" [{fmt(c['low'])}, {fmt(c['high'])}]"
    delta = f"±{fmt(c['delta'])}" if c.get("delta") is not None else "none"
    verdict = c["verdict"] + (" (A/A control)" if c.get("control") else "")
    return [study.get("name", "?"), f"{md['label']} {arrow}", _mean_ci(study, c["baseline"], c["metric"]),
            _mean_ci(study, c["variant"], c["metric"]), diff, delta, verdict, str(c.get("n", 0)),
            budget_text(study), data_text(study)]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_finding(folder: Path, summary: dict, readme_dir: Path) -> str:
    """One finding: heading, provenance and link, headline table, sentences."""
    report = Path(os.path.relpath(folder / "report.md", readme_dir)).as_posix()
    lines = [f"### {summary.get('title') or folder.name}", ""]
    code = summary.get("code") or {}
    commits = [v["commit"][:10] + (" (dirty)" if v.get("dirty") else "") for v in code.get("versions", [])
               if v.get("commit")]
    seeds = ", ".join(map(str, summary.get("seeds", [])))
    at = f"; cells at commit {', '.join(f'`{c}`' for c in commits)}" if commits else ""
    lines.append(f"Preset `{summary.get('preset', '?')}`, seeds {seeds}{at}. Full report: [{report}]({report}).")
    lines.append("")
    header = ["study", "metric", "baseline: mean [95% CI]", "variant: mean [95% CI]",
              "difference [95% CI]", "δ", "verdict", "seeds", "budget", "data"]
    rows, sentences = [], []
    for study in summary["studies"]:
        for c in study.get("comparisons", []):
            if c["metric"].startswith(PROBE_STATS):
                continue
            rows.append(_row(study, c))
            sentences.append(interpretation(study, c))
        if study.get("dead_units"):
            sentences.append(f"{study.get('name')}: the dead-unit story {study['dead_units']['verdict']}.")
    if rows:
        lines.append("| " + " | ".join(header) + " |")
        lines.append("| " + " | ".join("---" for _ in header) + " |")
        lines += ["| " + " | ".join(_cell(x) for x in row) + " |" for row in rows]
        lines.append("")
    else:
        lines += ["No comparison in this finding has a complete cell yet.", ""]
    lines += [f"- {s}" for s in sentences]
    lines += [f"- Warning: {w}" for w in code.get("warnings", [])]
    return "\n".join(lines).rstrip("\n")


def render_block(root: Path, readme_dir: Path) -> str:
    """Everything between the markers (markers excluded), for the findings under ``root``."""
    found = load_findings(root)
    if not found:
        return NONE_YET
    return "\n\n".join(render_finding(folder, s, readme_dir) for folder, s in sorted(found, key=_speed_share))


def _speed_share(finding: tuple[Path, dict[str, Any]]) -> tuple[float, str]:
    """Sort key: findings whose headline verdicts speak of final quality first, then those that
    contrast learning speed at a short budget (by the share of such verdicts), then by name."""
    folder, summary = finding
    flags = [bool(c.get("learning_speed")) for st in summary["studies"] for c in st.get("comparisons", [])
             if not str(c.get("metric", "")).startswith(PROBE_STATS)]
    return (sum(flags) / len(flags) if flags else 1.0, folder.name)


def splice(readme: str, block: str) -> str:
    """``readme`` with the text between the markers replaced by ``block``."""
    i, j = readme.find(START), readme.find(END)
    if i < 0 or j < i:
        raise UserError(f"README has no '{START}' … '{END}' block to write the findings into")
    return readme[:i + len(START)] + "\n" + block + "\n" + readme[j:]


def check(readme: Path, root: Path) -> bool:
    """True when ``readme``'s block is exactly what the summaries under ``root`` give."""
    text = readme.read_text(encoding="utf-8")
    return splice(text, render_block(root, readme.parent)) == text


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m apps.compare.findings",
                                description="Write the README's 'What we found' from findings/*/summary.json.")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 when the README is out of date")
    p.add_argument("--readme", default=str(REPO_ROOT / "README.md"), help="the README (default: the project's)")
    p.add_argument("--findings", default=str(REPO_ROOT / "findings"), help="folder of the findings")
    args = p.parse_args(list(argv))
    readme, root = Path(args.readme), Path(args.findings)
    if not readme.is_file():
        raise UserError(f"README '{readme}' does not exist")
    n = len(load_findings(root))
    if args.check:
        if check(readme, root):
            print(f"{readme}: 'What we found' matches the {n} finding(s) in {root}")
            return 0
        print(f"{readme}: 'What we found' differs from the {n} finding(s) in {root}; "
              "run python -m apps.compare.findings to rewrite it", file=sys.stderr)
        return 1
    text = readme.read_text(encoding="utf-8")
    new = splice(text, render_block(root, readme.parent))
    if new != text:
        readme.write_text(new, encoding="utf-8")
    print(f"{readme}: 'What we found' {'rewritten' if new != text else 'already up to date'} "
          f"from {n} finding(s) in {root}")
    return 0


if __name__ == "__main__":
    cli(main)
