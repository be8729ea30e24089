"""A tiny document model, so report.md and report.html say exactly the same things.

The report builder emits a list of blocks; ``report_md`` and ``report_html`` only render them.
Text is plain (no inline markup): each renderer escapes it for its own format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Union


@dataclass
class Heading:
    level: int  # 1 = title
    text: str
    anchor: str = ""


@dataclass
class Para:
    text: str
    kind: str = ""  # "" | "note" | "warn" | "verdict"


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    numeric: list[int] = field(default_factory=list)  # column indices to right-align


@dataclass
class Image:
    path: Path  # a PNG inside the report folder
    caption: str


@dataclass
class Gallery:
    """Images side by side (one per variant)."""

    images: list[Image]
    caption: str = ""


@dataclass
class Code:
    text: str
    collapsed: str = ""  # HTML: put in a <details> with this summary when non-empty


Block = Union[Heading, Para, Bullets, Table, Image, Gallery, Code]


def slug(text: str) -> str:
    """An anchor id from a heading."""
    out = "".join(ch.lower() if ch.isalnum() else "-" for ch in text)
    return "-".join(p for p in out.split("-") if p)
