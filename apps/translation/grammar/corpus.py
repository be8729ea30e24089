"""Write the generated corpus to disk in the Multi30k raw layout, so it loads like real data.

``{name}.en`` / ``{name}.de`` (optionally gzipped), one sentence a line, line N of one file
translating line N of the other — the layout of ``$LEAKYLAB_MULTI30K_DIR``. Files are written
atomically (temporary file + rename) and byte-identically for a seed (gzip without timestamps).
"""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

from apps.translation.grammar.generator import generate_corpus

# Our split names -> the file stems Multi30k uses for them.
MULTI30K_NAMES = {"train": "train", "valid": "val", "test": "test_2016_flickr"}


def _write_atomic(path: Path, data: bytes) -> None:
    # A temporary name beside the target (same file system, so the rename is atomic); opened
    # normally rather than with mkstemp so the file gets the usual umask permissions.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_corpus(
    folder: str | os.PathLike,
    corpus: dict[str, list[tuple[str, str]]] | None = None,
    *,
    seed: int = 0,
    names: dict[str, str] | None = None,
    compress: bool = False,
) -> list[Path]:
    """Write ``corpus`` (default: ``generate_corpus(seed)``) as ``{stem}.en`` / ``{stem}.de``.

    ``names`` maps split → file stem (default :data:`MULTI30K_NAMES`: train, val,
    test_2016_flickr); ``compress`` writes ``.gz`` files like the Multi30k distribution.
    Returns the paths written.
    """
    corpus = generate_corpus(seed) if corpus is None else corpus
    names = MULTI30K_NAMES if names is None else names
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for split, pairs in corpus.items():
        stem = names.get(split, split)
        for side, lang in ((0, "en"), (1, "de")):
            lines = [pair[side] for pair in pairs]
            if any("\n" in line or "\r" in line for line in lines):
                raise ValueError(f"a {split}.{lang} sentence contains a line break")
            data = "".join(line + "\n" for line in lines).encode("utf-8")
            path = folder / f"{stem}.{lang}"
            if compress:
                buf = io.BytesIO()
                with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
                    gz.write(data)
                data, path = buf.getvalue(), path.with_name(path.name + ".gz")
            _write_atomic(path, data)
            written.append(path)
    return written
