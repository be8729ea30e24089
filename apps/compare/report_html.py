"""Self-contained HTML rendering of the report's blocks.

One file that opens anywhere, offline and for ever: CSS inline, every image embedded as a
base64 ``data:`` URI, and no URL to anything outside the file (a test checks that).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from apps.compare.doc import Block, Bullets, Code, Gallery, Heading, Image, Para, Table, slug

CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1f24;
       max-width: 1180px; margin: 2em auto; padding: 0 1.2em; background: #fff; }
h1 { font-size: 1.9em; border-bottom: 2px solid #d0d7de; padding-bottom: .2em; }
h2 { font-size: 1.45em; margin-top: 2em; border-bottom: 1px solid #d0d7de; padding-bottom: .15em; }
h3 { font-size: 1.15em; margin-top: 1.5em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: .92em; }
th, td { border: 1px solid #d0d7de; padding: .3em .6em; vertical-align: top; text-align: left; }
th { background: #f3f5f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
caption { caption-side: top; text-align: left; font-style: italic; color: #57606a; padding-bottom: .3em; }
tr.verdict-better td.v { color: #116329; font-weight: 600; }
tr.verdict-worse td.v { color: #a40e26; font-weight: 600; }
p.note { background: #f6f8fa; border-left: 4px solid #8c959f; padding: .5em .8em; }
p.warn { background: #fff8c5; border-left: 4px solid #d4a72c; padding: .5em .8em; }
p.verdict { font-weight: 600; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #d0d7de; }
figcaption { color: #57606a; font-size: .9em; }
.gallery { display: flex; flex-wrap: wrap; gap: 1em; }
.gallery figure { margin: 0; text-align: center; }
.gallery img { width: 220px; image-rendering: pixelated; }
pre { background: #f6f8fa; padding: .7em; overflow-x: auto; font-size: .85em; }
details summary { cursor: pointer; color: #0969da; }
nav ul { columns: 2; }
"""


def data_uri(path: Path) -> str:
    """A PNG (or other image) file as a ``data:`` URI."""
    mime = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}.get(
        path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


def _figure(img: Image) -> str:
    if not img.path.is_file():
        return f"<p class=\"warn\">missing image: {_e(img.caption)}</p>"
    return (f"<figure><img src=\"{data_uri(img.path)}\" alt=\"{_e(img.caption)}\">"
            f"<figcaption>{_e(img.caption)}</figcaption></figure>")


def _table(t: Table) -> str:
    parts = ["<table>"]
    if t.caption:
        parts.append(f"<caption>{_e(t.caption)}</caption>")
    parts.append("<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in t.header) + "</tr></thead><tbody>")
    vcol = next((i for i, h in enumerate(t.header) if h.lower() == "verdict"), None)
    for row in t.rows:
        cls = ""
        if vcol is not None and vcol < len(row) and row[vcol] in ("better", "worse"):
            cls = f" class=\"verdict-{row[vcol]}\""
        cells = []
        for i, c in enumerate(row):
            klass = "num" if i in t.numeric else ("v" if i == vcol else "")
            cells.append(f"<td class=\"{klass}\">{_e(c)}</td>" if klass else f"<td>{_e(c)}</td>")
        parts.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def render_html(blocks: list[Block], title: str) -> str:
    """The report as one self-contained HTML page."""
    body: list[str] = []
    toc = [b for b in blocks if isinstance(b, Heading) and b.level == 2]
    for b in blocks:
        if isinstance(b, Heading):
            anchor = b.anchor or slug(b.text)
            body.append(f"<h{b.level} id=\"{_e(anchor)}\">{_e(b.text)}</h{b.level}>")
            if b.level == 1 and toc:
                items = "".join(f"<li><a href=\"#{_e(h.anchor or slug(h.text))}\">{_e(h.text)}</a></li>" for h in toc)
                body.append(f"<nav><ul>{items}</ul></nav>")
        elif isinstance(b, Para):
            cls = f" class=\"{b.kind}\"" if b.kind else ""
            body.append(f"<p{cls}>{_e(b.text)}</p>")
        elif isinstance(b, Bullets):
            body.append("<ul>" + "".join(f"<li>{_e(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            body.append(_table(b))
        elif isinstance(b, Image):
            body.append(_figure(b))
        elif isinstance(b, Gallery):
            cap = f"<p><em>{_e(b.caption)}</em></p>" if b.caption else ""
            body.append(cap + "<div class=\"gallery\">" + "".join(_figure(i) for i in b.images) + "</div>")
        elif isinstance(b, Code):
            pre = f"<pre>{_e(b.text)}</pre>"
            body.append(f"<details><summary>{_e(b.collapsed)}</summary>{pre}</details>" if b.collapsed else pre)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{_e(title)}</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
