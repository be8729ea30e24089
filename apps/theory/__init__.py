"""The theory check: each quantitative claim of the seed texts (docs/science.md), predicted vs measured.

``python -m apps.theory [--out reports/theory] [--seed N] [--quick]`` measures the eight claims on
real modules, writes ``report.md`` and plots, prints the table, and exits 0 only when every claim
passes (its checks hold and its negative controls miss). :func:`run_claims` is the in-process API.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Sequence

if TYPE_CHECKING:  # torch is imported only when claims run, so bad CLI input fails fast
    from apps.theory.results import ClaimResult


def claim_functions() -> list[Callable[[int, bool], "ClaimResult"]]:
    """The eight claim measurements, in docs/science.md's order (imported lazily: torch, sklearn)."""
    from apps.theory.claims_dead import claim5, claim6
    from apps.theory.claims_depth import claim3, claim4
    from apps.theory.claims_local import claim1, claim2, claim8
    from apps.theory.claims_remedies import claim7

    return [claim1, claim2, claim3, claim4, claim5, claim6, claim7, claim8]


def run_claims(seed: int = 0, quick: bool = False, only: Sequence[int] | None = None) -> list["ClaimResult"]:
    """Measure the claims (all, or the numbers in ``only``); each records its wall time."""
    results = []
    for number, fn in enumerate(claim_functions(), start=1):
        if only is not None and number not in only:
            continue
        start = time.perf_counter()
        result = fn(seed, quick)
        result.seconds = time.perf_counter() - start
        results.append(result)
    return results
