"""A folder of images as a dataset: nested class folders (ImageFolder-style) or flat.

Scanning checks every file's header with PIL (cheap: no full decode); files PIL cannot open
are skipped and reported with a count, so one bad download does not stop a run. Labels: when
every image sits under a first-level subfolder and there are at least two of them, the subfolder
names (sorted) are the classes; otherwise the set is unlabelled.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from apps.gan.images import LazyImages
from common.errors import UserError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")


@dataclass
class FolderScan:
    files: list[Path]
    labels: list[int] | None
    classes: list[str]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    ignored: int = 0  # files without an image extension


def _check(path: Path) -> str | None:
    """None when PIL can open ``path`` and verify it, else why not."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. DecompressionBombWarning, palette transparency
            with Image.open(path) as img:
                img.verify()
    except Exception as exc:  # PIL raises many types for bad files; any of them means "skip it"
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip(": ")
    return None


def scan_folder(root: str | Path) -> FolderScan:
    """Every readable image under ``root`` (sorted, recursive), labels from class subfolders."""
    base = Path(root)
    if not base.exists():
        raise UserError(f"data.path '{base}' does not exist; point data.path at a folder of images")
    if not base.is_dir():
        raise UserError(f"data.path '{base}' is not a folder; point data.path at a folder of images")
    found: list[Path] = []
    ignored = 0
    for dirpath, dirnames, filenames in os.walk(base, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            if name.lower().endswith(EXTENSIONS):
                found.append(Path(dirpath) / name)
            else:
                ignored += 1
    files, skipped = [], []
    for f in found:
        why = _check(f)
        if why is None:
            files.append(f)
        else:
            skipped.append((f, why))
    if not files:
        detail = f"; {len(skipped)} image file(s) could not be read" if skipped else ""
        raise UserError(f"data.path '{base}' holds no readable images ({', '.join(EXTENSIONS)}){detail}; "
                        "point data.path at a folder of images")
    rel_parts = [f.relative_to(base).parts for f in files]
    classes = sorted({p[0] for p in rel_parts if len(p) > 1})
    labelled = len(classes) >= 2 and all(len(p) > 1 for p in rel_parts)
    labels = [classes.index(p[0]) for p in rel_parts] if labelled else None
    return FolderScan(files, labels, classes if labelled else [], skipped, ignored)


def report_scan(scan: FolderScan, root: str | Path, limit: int = 5) -> str:
    """A short human summary: how many images, classes, and which files were skipped."""
    lines = [f"folder '{root}': {len(scan.files)} images"
             + (f" in {len(scan.classes)} classes" if scan.labels is not None else " (unlabelled)")]
    if scan.skipped:
        lines.append(f"skipped {len(scan.skipped)} unreadable file(s):")
        lines += [f"  {p}: {why}" for p, why in scan.skipped[:limit]]
        if len(scan.skipped) > limit:
            lines.append(f"  ... and {len(scan.skipped) - limit} more")
    if scan.ignored:
        lines.append(f"ignored {scan.ignored} file(s) without an image extension")
    return "\n".join(lines)


def open_image(path: Path) -> Image.Image:
    with Image.open(path) as img:
        img.load()
        return img.copy() if img.mode in ("L", "RGB") else img.convert("RGBA" if "A" in img.getbands() else "RGB")


def folder_images(scan: FolderScan, root: str | Path, size: int, channels: int) -> LazyImages:
    """The scanned files as a lazily decoded image set (identity = relative paths + file sizes)."""
    base = Path(root)
    h = hashlib.sha256()
    for f in scan.files:
        h.update(f"{f.relative_to(base)}\0{f.stat().st_size}\n".encode())
    labels = None if scan.labels is None else torch.tensor(scan.labels, dtype=torch.long)
    return LazyImages(scan.files, open_image, size, channels, labels, identity=f"folder:{h.hexdigest()}")
