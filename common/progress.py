"""Progress bars that suit a terminal and a log file alike.

In a terminal a tqdm bar redraws in place several times a second. Redirected to a file, every
redraw stays in the file: one 14,000-step run at tqdm's default 0.1 s interval left 350 KB of bar
updates in its log, most of them on one ``\\r``-joined line. Outside a terminal :func:`progress`
therefore redraws at most every :data:`LOG_INTERVAL_S` seconds (``$TQDM_MININTERVAL`` overrides
it), each redraw on a line of its own, so ``tail -f`` and ``grep`` work on the log.

    for batch in progress(loader, desc="score"): ...
    bar = progress(total=steps, desc="train", initial=start, enabled=is_main)
    bar.update(1); bar.write("a message that does not break the bar"); bar.close()
"""

from __future__ import annotations

import os
import sys
from typing import Any, Iterable, TextIO

from tqdm import tqdm

LOG_INTERVAL_S = 10.0
"""Seconds between redraws outside a terminal: a line per 10 s is enough to see a run move."""

_MOVE_UP = "\x1b[A"  # tqdm's cursor-up for nested bars; meaningless in a file


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is an interactive terminal (a file, pipe or capture is not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def log_interval() -> float:
    """The redraw interval outside a terminal: ``$TQDM_MININTERVAL`` when set and valid, else
    :data:`LOG_INTERVAL_S` (the comparison runner sets the variable for its cells)."""
    try:
        value = float(os.environ.get("TQDM_MININTERVAL", ""))
    except ValueError:
        return LOG_INTERVAL_S
    return value if value >= 0 else LOG_INTERVAL_S


class LineWriter:
    """A file for tqdm that turns each in-place redraw into one line (``\\r`` and padding dropped)."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.encoding = getattr(stream, "encoding", None) or "utf-8"

    def write(self, text: str) -> int:
        line = text.replace(_MOVE_UP, "").replace("\r", "").replace("\n", "").rstrip()
        if line:
            self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def progress(iterable: Iterable[Any] | int | None = None, desc: str = "", *, total: int | None = None,
             enabled: bool = True, stream: TextIO | None = None, **kwargs: Any) -> tqdm:
    """A tqdm bar over ``iterable`` (or of ``total`` steps when given an int or ``total=``) on
    ``stream`` (default stderr): tqdm's own behaviour in a terminal, a line every
    :func:`log_interval` seconds elsewhere. ``enabled=False`` gives a silent bar (other
    processes, ``train.progress=false``); other keywords go to tqdm."""
    if isinstance(iterable, int):
        iterable, total = None, iterable
    out = sys.stderr if stream is None else stream
    if enabled and not is_terminal(out):
        interval = log_interval()
        kwargs.setdefault("mininterval", interval)
        kwargs.setdefault("maxinterval", max(interval, 10.0))  # tqdm's monitor must not redraw sooner
        out = LineWriter(out)
    else:
        kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, desc=desc, total=total, disable=not enabled, file=out, **kwargs)
