"""Markdown rendering of the report's blocks (images referenced relative to the report folder)."""

from __future__ import annotations

from pathlib import Path

from apps.compare.doc import Block, Bullets, Code, Gallery, Heading, Image, Para, Table


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def render_md(blocks: list[Block], root: Path) -> str:
    """The report as Markdown; ``root`` is the folder report.md is written to."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + b.text)
        elif isinstance(b, Para):
            prefix = {"note": "> ", "warn": "> **Warning:** ", "verdict": "**"}.get(b.kind, "")
            suffix = "**" if b.kind == "verdict" else ""
            out.append(prefix + b.text + suffix)
        elif isinstance(b, Bullets):
            out.append("\n".join(f"- {item}" for item in b.items))
        elif isinstance(b, Table):
            lines = []
            if b.caption:
                lines.append(f"*{b.caption}*\n")
            lines.append("| " + " | ".join(_cell(h) for h in b.header) + " |")
            aligns = ["---:" if i in b.numeric else "---" for i in range(len(b.header))]
            lines.append("| " + " | ".join(aligns) + " |")
            lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in b.rows]
            out.append("\n".join(lines))
        elif isinstance(b, Image):
            out.append(f"![{b.caption}]({_rel(b.path, root)})\n\n*{b.caption}*")
        elif isinstance(b, Gallery):
            # Markdown has no layout; a one-row table puts the images side by side on GitHub.
            head = "| " + " | ".join(_cell(i.caption) for i in b.images) + " |"
            sep = "| " + " | ".join(":---:" for _ in b.images) + " |"
            row = "| " + " | ".join(f"![{_cell(i.caption)}]({_rel(i.path, root)})" for i in b.images) + " |"
            text = "\n".join([head, sep, row])
            out.append((f"*{b.caption}*\n\n" if b.caption else "") + text)
        elif isinstance(b, Code):
            out.append("```\n" + b.text.rstrip("\n") + "\n```")
    return "\n\n".join(out) + "\n"
