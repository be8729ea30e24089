"""Parallel-data loading: the Multi30k raw files through LEAKYLAB_MULTI30K_DIR, TSV, JSONL,
split aliases, cleaning counts, and the errors for broken inputs."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from apps.translation.config import DataConfig
from apps.translation.data import ENV_DIR, load_split, read_lines
from common.errors import UserError

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def multi30k_dir() -> Path:
    """The real Multi30k folder; in CI its absence is a failure, elsewhere a skip."""
    raw = os.environ.get(ENV_DIR, "")
    if not raw or not Path(raw).is_dir():
        if IN_CI:
            pytest.fail(f"{ENV_DIR} must point at the Multi30k raw files in CI (got {raw!r})")
        pytest.skip(f"{ENV_DIR} not set")
    return Path(raw)


def test_multi30k_loader_reads_the_env_folder():
    folder = multi30k_dir()
    cfg = DataConfig(source="files", src_lang="de", tgt_lang="en")  # no data.dir: the env variable
    sizes = {alias: len(load_split(cfg, alias).pairs) for alias in ("train", "val", "test_2016_flickr")}
    assert sizes == {"train": 29000, "val": 1014, "test_2016_flickr": 1000}
    test = load_split(cfg, "test")
    assert test.target_file == str(folder / "test_2016_flickr.en.gz")
    src0 = gzip.decompress((folder / "test_2016_flickr.de.gz").read_bytes()).decode().split("\n")[0]
    assert test.pairs[0][0] == " ".join(src0.split())
    reverse = load_split(DataConfig(source="files", src_lang="en", tgt_lang="de"), "test")
    assert reverse.pairs[0] == test.pairs[0][::-1]


def write(path: Path, lines: list[str], gz: bool = False) -> None:
    data = "".join(x + "\n" for x in lines).encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)


def test_plain_pairs_clean_and_count(tmp_path):
    write(tmp_path / "train.de", ["Ein  Hund\tläuft. ", "", "zu lang " * 10, "Gut.", "Nur links"])
    write(tmp_path / "train.en", ["A dog runs.", "Empty source.", "too long", "Good.", ""])
    cfg = DataConfig(source="files", dir=str(tmp_path), src_lang="de", tgt_lang="en", max_words=8)
    split = load_split(cfg, "train")
    assert split.pairs == [("Ein Hund läuft.", "A dog runs."), ("Gut.", "Good.")]
    assert split.stats() == {"read": 5, "kept": 2, "empty": 2, "too_long": 1}
    write(tmp_path / "valid.de", ["", "x"])
    write(tmp_path / "valid.en", ["y", ""])
    assert len(load_split(cfg, "val").pairs) == 2  # evaluation splits stay line-aligned


def test_tsv_with_header_and_jsonl(tmp_path):
    write(tmp_path / "train.tsv.gz", ["en\tde", "A cat.\tEine Katze.", "Two.\tZwei."], gz=True)
    cfg = DataConfig(source="files", dir=str(tmp_path), src_lang="de", tgt_lang="en")
    assert load_split(cfg, "train").pairs == [("Eine Katze.", "A cat."), ("Zwei.", "Two.")]
    write(tmp_path / "test.jsonl", [json.dumps({"translation": {"de": "Hallo.", "en": "Hello."}}),
                                    json.dumps({"de": "Ja.", "en": "Yes."})])
    assert load_split(cfg, "test_2016_flickr").pairs == [("Hallo.", "Hello."), ("Ja.", "Yes.")]
    write(tmp_path / "valid.tsv", ["only one field"])
    with pytest.raises(UserError, match="line 1 has 1 tab-separated fields"):
        load_split(cfg, "valid")


def test_broken_inputs_are_user_errors(tmp_path, monkeypatch):
    write(tmp_path / "train.de", ["a", "b"])
    write(tmp_path / "train.en", ["a"])
    cfg = DataConfig(source="files", dir=str(tmp_path), src_lang="de", tgt_lang="en")
    with pytest.raises(UserError, match=r"\(2 lines\) and .* \(1 lines\) differ in length"):
        load_split(cfg, "train")
    (tmp_path / "valid.de").write_bytes(b"ok\n\xff\xfe bad\n")
    write(tmp_path / "valid.en", ["ok", "bad"])
    with pytest.raises(UserError, match=r"line 2 is not UTF-8 text \(byte 0xff\)"):
        load_split(cfg, "valid")
    write(tmp_path / "test.de", ["nur deutsch"])
    with pytest.raises(UserError, match="no test file for language 'en'"):
        load_split(cfg, "test")
    (tmp_path / "broken.de.gz").write_bytes(b"not gzip at all")
    with pytest.raises(UserError, match="cannot read"):
        read_lines(tmp_path / "broken.de.gz")
    monkeypatch.delenv(ENV_DIR, raising=False)
    with pytest.raises(UserError, match=ENV_DIR):
        load_split(DataConfig(source="files", src_lang="de", tgt_lang="en"), "train")
    with pytest.raises(UserError, match="is not a folder"):
        load_split(DataConfig(source="files", dir=str(tmp_path / "nope"), src_lang="de", tgt_lang="en"), "train")
    with pytest.raises(UserError, match="unknown split"):
        load_split(cfg, "dev2017")


def test_hf_source_is_lazy_and_errors_cleanly(monkeypatch):
    """No network here: loading a hub dataset must fail with one clear UserError, not a traceback."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="cannot load Hugging Face dataset 'no-such/dataset-xyz'"):
        load_split(DataConfig(source="hf", hf_name="no-such/dataset-xyz", src_lang="de", tgt_lang="en"), "train")


def test_embedded_corpus_in_both_directions():
    en_de = load_split(DataConfig(source="embedded", src_lang="en", tgt_lang="de"), "valid")
    de_en = load_split(DataConfig(source="embedded", src_lang="de", tgt_lang="en"), "val")
    assert len(en_de.pairs) == 1000 and en_de.pairs[0] == de_en.pairs[0][::-1]
    train = load_split(DataConfig(source="embedded", src_lang="en", tgt_lang="de"), "train")
    assert len(train.pairs) == 20000 and not {s for s, _ in train.pairs} & {s for s, _ in en_de.pairs}
    with pytest.raises(UserError, match="English–German"):
        load_split(DataConfig(source="embedded", src_lang="en", tgt_lang="fr"), "train")
