"""common.progress: tqdm's in-place bar in a terminal; outside one, a line every few seconds."""

from __future__ import annotations

import io

import pytest

from common import progress as progress_mod
from common.progress import LOG_INTERVAL_S, LineWriter, progress


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_outside_a_terminal_the_bar_redraws_rarely_and_line_by_line(monkeypatch):
    monkeypatch.delenv("TQDM_MININTERVAL", raising=False)
    log = io.StringIO()
    bar = progress(total=1000, desc="work", stream=log)
    assert bar.mininterval == LOG_INTERVAL_S >= 5 and bar.maxinterval >= bar.mininterval
    for _ in range(1000):
        bar.update(1)  # a fast loop: far less than one interval
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and log.getvalue().endswith("\n")
    assert len(lines) <= 3 and lines[-1].startswith("work: 100%") and "1000/1000" in lines[-1]


def test_in_a_terminal_tqdm_keeps_its_own_interval(monkeypatch):
    monkeypatch.delenv("TQDM_MININTERVAL", raising=False)
    term = FakeTerminal()
    bar = progress(range(3), desc="t", stream=term)
    assert bar.mininterval == pytest.approx(0.1)  # tqdm's default
    list(bar)
    assert "\r" in term.getvalue()  # redrawn in place


def test_the_environment_sets_the_log_interval_and_every_redraw_is_a_line(monkeypatch):
    monkeypatch.setenv("TQDM_MININTERVAL", "0")
    log = io.StringIO()
    for _ in progress(range(4), "each", stream=log, miniters=1):
        pass
    lines = log.getvalue().splitlines()
    assert [line.split("|")[0].strip() for line in lines[:5]] == ["each:   0%", "each:  25%", "each:  50%",
                                                                  "each:  75%", "each: 100%"]
    monkeypatch.setenv("TQDM_MININTERVAL", "soon")  # not a number: the default, not a crash
    assert progress_mod.log_interval() == LOG_INTERVAL_S


def test_a_disabled_bar_writes_nothing_and_an_int_is_a_total():
    log = io.StringIO()
    bar = progress(5, "quiet", stream=log, enabled=False)
    bar.update(5)
    bar.close()
    assert log.getvalue() == "" and bar.total == 5


def test_line_writer_drops_carriage_returns_padding_and_cursor_moves():
    out = io.StringIO()
    w = LineWriter(out)
    for text in ("\rstep 1   ", "\n", "\x1b[A", "\rstep 2", ""):
        w.write(text)
    assert out.getvalue() == "step 1\nstep 2\n"
