"""Parallel text: where it comes from and how it is cleaned.

Sources (``data.source``):

- ``embedded`` — the English→German grammar corpus generated from a seed (apps.translation.grammar);
- ``files`` — local files under ``data.dir`` (or ``$LEAKYLAB_MULTI30K_DIR``):
  ``<split>.<lang>[.gz]`` line-aligned pairs (the Multi30k raw layout), ``<split>.tsv[.gz]`` or
  ``<split>.jsonl[.gz]``; the Multi30k names ``val`` and ``test_2016_flickr`` are found for
  ``valid`` and ``test``;
- ``hf`` — a Hugging Face dataset (imported lazily; needs the network or a local cache).

Cleaning: whitespace is collapsed (the tokenizer then round-trips every line exactly). In the
training split, pairs with an empty side or a side over ``max_words`` words are dropped and
counted. Evaluation splits are kept whole, so hypotheses stay line-aligned with the raw
reference file that the ``sacrebleu`` command line scores.
"""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from apps.translation.config import SPLITS, DataConfig, canonical_split
from common.errors import UserError

ENV_DIR = "LEAKYLAB_MULTI30K_DIR"
# File stems tried for each split, in order (ours first, then the Multi30k/HF names).
SPLIT_STEMS = {"train": ("train",), "valid": ("valid", "val", "validation", "dev"),
               "test": ("test", "test_2016_flickr")}

Pair = tuple[str, str]


@dataclass
class SplitData:
    """One split: the (source, target) pairs plus what cleaning did and where they came from."""

    pairs: list[Pair]
    read: int = 0
    empty: int = 0
    too_long: int = 0
    origin: str = ""
    target_file: str | None = field(default=None)
    """The raw reference file (local line-aligned sources only), for external scorers."""

    def stats(self) -> dict:
        return {"read": self.read, "kept": len(self.pairs), "empty": self.empty, "too_long": self.too_long}


def normalize(text: str) -> str:
    """Collapse every run of whitespace to one space and strip the ends."""
    return " ".join(text.split())


def clean(raw: list[Pair], cfg: DataConfig, split: str, origin: str, target_file: str | None = None) -> SplitData:
    """Normalise whitespace; in ``train`` drop (and count) empty and over-long pairs."""
    out = SplitData([], read=len(raw), origin=origin, target_file=target_file)
    for src, tgt in raw:
        src, tgt = normalize(src), normalize(tgt)
        if split == "train":
            if not src or not tgt:
                out.empty += 1
                continue
            if len(src.split()) > cfg.max_words or len(tgt.split()) > cfg.max_words:
                out.too_long += 1
                continue
        out.pairs.append((src, tgt))
    return out


# -- local files --------------------------------------------------------------------------------


def data_dir(cfg: DataConfig) -> Path:
    """``data.dir`` or ``$LEAKYLAB_MULTI30K_DIR``; a UserError naming both when neither is usable."""
    raw = cfg.dir or os.environ.get(ENV_DIR, "")
    if not raw:
        raise UserError(f"data.source=files needs data.dir=FOLDER or the environment variable {ENV_DIR} "
                        "(a folder of parallel files such as train.de.gz / train.en.gz)")
    path = Path(raw).expanduser()
    if not path.is_dir():
        where = "data.dir" if cfg.dir else ENV_DIR
        raise UserError(f"{where}='{raw}' is not a folder; point it at the parallel files (Multi30k raw layout)")
    return path


def read_lines(path: Path) -> list[str]:
    """Lines of a plain or gzipped UTF-8 file, without line terminators.

    Decoding is strict: a non-UTF-8 byte is reported with its line rather than silently replaced,
    because a mis-encoded corpus silently ruins BLEU.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        if path.name.endswith(".gz") or data[:2] == b"\x1f\x8b":  # gzip by name or by magic number
            data = gzip.decompress(data)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise UserError(f"cannot read '{path}' ({exc}); is it a complete (gzip) text file?") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UserError(f"'{path}' line {line} is not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                        "re-encode the file as UTF-8") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line, it does not start a new one
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def _find(folder: Path, split: str, suffix: str) -> Path | None:
    for stem in SPLIT_STEMS[split]:
        for name in (f"{stem}{suffix}", f"{stem}{suffix}.gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def _read_pairs_files(folder: Path, cfg: DataConfig, split: str) -> tuple[list[Pair], str, str] | None:
    src_path = _find(folder, split, f".{cfg.src_lang}")
    tgt_path = _find(folder, split, f".{cfg.tgt_lang}")
    if src_path is None and tgt_path is None:
        return None
    if src_path is None or tgt_path is None:
        have, lang = (src_path, cfg.tgt_lang) if tgt_path is None else (tgt_path, cfg.src_lang)
        raise UserError(f"found '{have}' but no {split} file for language '{lang}' in '{folder}' "
                        f"(expected e.g. {SPLIT_STEMS[split][0]}.{lang}.gz)")
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        raise UserError(f"parallel files '{src_path}' ({len(src)} lines) and '{tgt_path}' ({len(tgt)} lines) "
                        "differ in length; they must be line-aligned")
    return list(zip(src, tgt)), f"{src_path} + {tgt_path}", str(tgt_path)


def _read_tsv(path: Path, cfg: DataConfig) -> list[Pair]:
    lines = read_lines(path)
    order = (0, 1)
    if lines:
        head = lines[0].split("\t")
        if sorted(head) == sorted([cfg.src_lang, cfg.tgt_lang]):  # optional header naming languages
            order = (head.index(cfg.src_lang), head.index(cfg.tgt_lang))
            lines = lines[1:]
    pairs = []
    for i, line in enumerate(lines, 1):
        cols = line.split("\t")
        if len(cols) != 2:
            raise UserError(f"'{path}' line {i} has {len(cols)} tab-separated fields, expected 2 (source, target)")
        pairs.append((cols[order[0]], cols[order[1]]))
    return pairs


def _pair_from_record(rec: object, cfg: DataConfig) -> Pair | None:
    if isinstance(rec, dict) and isinstance(rec.get("translation"), dict):
        rec = rec["translation"]  # the Hugging Face translation layout
    if isinstance(rec, dict) and isinstance(rec.get(cfg.src_lang), str) and isinstance(rec.get(cfg.tgt_lang), str):
        return rec[cfg.src_lang], rec[cfg.tgt_lang]
    return None


def _read_jsonl(path: Path, cfg: DataConfig) -> list[Pair]:
    pairs = []
    for i, line in enumerate(read_lines(path), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise UserError(f"'{path}' line {i} is not valid JSON") from None
        pair = _pair_from_record(rec, cfg)
        if pair is None:
            raise UserError(f"'{path}' line {i} lacks string fields '{cfg.src_lang}' and '{cfg.tgt_lang}'")
        pairs.append(pair)
    return pairs


def load_files(cfg: DataConfig, split: str) -> SplitData:
    folder = data_dir(cfg)
    fmt = cfg.format
    if fmt in ("auto", "pairs"):
        found = _read_pairs_files(folder, cfg, split)
        if found is not None:
            raw, origin, target_file = found
            return clean(raw, cfg, split, origin, target_file)
    for kind, reader in (("tsv", _read_tsv), ("jsonl", _read_jsonl)):
        if fmt in ("auto", kind):
            path = _find(folder, split, f".{kind}")
            if path is not None:
                return clean(reader(path, cfg), cfg, split, str(path))
    stem = SPLIT_STEMS[split][-1] if split == "test" else SPLIT_STEMS[split][0]
    raise UserError(f"no {split} data in '{folder}': expected {stem}.{cfg.src_lang}[.gz] and "
                    f"{stem}.{cfg.tgt_lang}[.gz], {stem}.tsv or {stem}.jsonl (data.format={fmt})")


# -- embedded and Hugging Face --------------------------------------------------------------------


def load_embedded(cfg: DataConfig, split: str) -> SplitData:
    from apps.translation.grammar import generate_corpus  # the generated English→German corpus

    langs = {cfg.src_lang, cfg.tgt_lang}
    if langs != {"en", "de"}:
        raise UserError(f"the embedded corpus is English–German; set data.src_lang/tgt_lang to en and de (got "
                        f"{cfg.src_lang}, {cfg.tgt_lang})")
    corpus = {canonical_split(k): v for k, v in generate_corpus(cfg.embedded_seed).items()}
    raw = [(en, de) if cfg.src_lang == "en" else (de, en) for en, de in corpus[split]]
    return clean(raw, cfg, split, f"embedded grammar corpus (seed {cfg.embedded_seed})")


HF_SPLITS = {"train": ("train",), "valid": ("validation", "valid", "val", "dev"),
             "test": ("test", "test_2016_flickr")}


def load_hf(cfg: DataConfig, split: str) -> SplitData:
    try:
        import datasets
    except ImportError:
        raise UserError("data.source=hf needs the 'datasets' package: pip install 'leakylab[hub]'") from None
    try:
        ds = datasets.load_dataset(cfg.hf_name)
    except Exception as exc:  # network, auth, unknown name: all the user's to fix
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"cannot load Hugging Face dataset '{cfg.hf_name}' ({first}); check the name and the "
                        "network, or use data.source=files with local copies") from None
    name = next((n for n in HF_SPLITS[split] if n in ds), None)
    if name is None:
        raise UserError(f"Hugging Face dataset '{cfg.hf_name}' has no {split} split (has: {', '.join(ds)})")
    raw = []
    for rec in ds[name]:
        pair = _pair_from_record(rec, cfg)
        if pair is None:
            raise UserError(f"Hugging Face dataset '{cfg.hf_name}' has no '{cfg.src_lang}'/'{cfg.tgt_lang}' columns")
        raw.append(pair)
    return clean(raw, cfg, split, f"hf:{cfg.hf_name}/{name}")


def load_split(cfg: DataConfig, split: str) -> SplitData:
    """Pairs of ``split`` (``train``/``valid``/``test`` or a Multi30k alias) from ``cfg.source``."""
    split = canonical_split(split)
    if split not in SPLITS:
        raise UserError(f"unknown split '{split}'; use one of {', '.join(SPLITS)} (or val, test_2016_flickr)")
    loader = {"embedded": load_embedded, "files": load_files, "hf": load_hf}[cfg.source]
    return loader(cfg, split)
