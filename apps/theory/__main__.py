"""``python -m apps.theory``: measure the seed texts' claims, write the report, exit 0 iff all pass."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Sequence

from common.errors import UserError, cli


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m apps.theory", description=__doc__)
    p.add_argument("--out", default="reports/theory", help="report folder (default reports/theory)")
    p.add_argument("--seed", type=int, default=0, help="seed of every measurement (default 0)")
    p.add_argument("--quick", action="store_true", help="smaller samples (still real measurements)")
    p.add_argument("--claims", default="", help="comma-separated claim numbers to run (default all)")
    return p.parse_args(argv)


def parse_only(text: str) -> list[int] | None:
    if not text:
        return None
    try:
        only = sorted({int(t) for t in text.split(",") if t.strip()})
    except ValueError:
        raise UserError(f"--claims takes comma-separated numbers 1-8 (got {text!r})") from None
    if not only or any(n < 1 or n > 8 for n in only):
        raise UserError(f"--claims takes comma-separated numbers 1-8 (got {text!r})")
    return only


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0 (got {args.seed})")
    only = parse_only(args.claims)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder; pass a folder path")

    import torch

    # One thread: the measurements are small, and a fixed thread count keeps float reductions —
    # hence the report — identical from run to run.
    torch.set_num_threads(1)
    from apps.theory import run_claims
    from apps.theory.report import SUMMARY_HEADER, summary_rows, write_report

    start = time.perf_counter()
    results = run_claims(args.seed, args.quick, only)
    path = write_report(results, out, args.seed, args.quick, torch.__version__.split("+")[0])
    rows = summary_rows(results)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(SUMMARY_HEADER)]
    widths = [min(w, 60) for w in widths]
    for row in [SUMMARY_HEADER] + rows:
        print("  ".join(c[:w].ljust(w) for c, w in zip(row, widths)).rstrip())
    for r in results:
        failing = [c.name for c in r.checks if not c.holds]
        holding = [c.name for c in r.controls if c.holds]
        for name in failing:
            print(f"  claim {r.number}: check fails: {name}")
        for name in holding:
            print(f"  claim {r.number}: control does not fail: {name}")
    passed = sum(r.passed for r in results)
    times = ", ".join(f"{r.number}: {r.seconds:.1f}s" for r in results)
    print(f"{passed}/{len(results)} claims pass; report {path} ({time.perf_counter() - start:.1f}s;"
          f" {times})")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    cli(main)
