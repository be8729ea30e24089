"""The design docs stay reachable: every ``docs/<page>.md`` the code or README names exists, and
every relative link in the docs and the README points at a file that exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CODE = [p for d in ("common", "apps", "bench", "tests") for p in sorted((ROOT / d).rglob("*.py"))]


def test_docs_pages_named_in_code_exist():
    named = {}
    for path in CODE + SOURCES:
        for page in re.findall(r"docs/([\w-]+\.md)", path.read_text(encoding="utf-8")):
            named.setdefault(page, path.relative_to(ROOT))
    assert named, "nothing names a docs page: the pattern or the tree changed"
    missing = {page: str(where) for page, where in named.items() if not (ROOT / "docs" / page).is_file()}
    assert not missing, f"docs pages named but absent: {missing}"


def test_relative_markdown_links_resolve():
    broken = []
    for path in SOURCES:
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a URL or an anchor on the same page
            if not (path.parent / target.split("#")[0]).exists():
                broken.append(f"{path.relative_to(ROOT)} -> {target}")
    assert not broken, f"broken links: {broken}"
