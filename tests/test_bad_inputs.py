"""The bad-input table of issue 7: every case ends with ONE exact line ``error: ...`` on stderr,
exit status 2, no traceback, and nothing already on disk changed; the documented skips (corrupt
images, empty and over-long text lines) are reported and training goes on.

All cases run in-process through ``common.errors.cli`` so the table stays fast; runs that need a
checkpoint are trained once per module (tiny models) and copied per case. The app tests
(test_gan_*.py, test_translation_*.py) check some of these by substring; here each case asserts
the whole message, so a changed wording is a deliberate change of this table.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from apps.gan import evaluate as gan_evaluate
from apps.gan import sample as gan_sample
from apps.gan import train as gan_train
from apps.translation import evaluate as tr_evaluate
from apps.translation import train as tr_train
from apps.translation import translate as tr_translate
from common.errors import cli
from common.runlock import machine_scope
from test_gan_data import write_folder
from test_gan_kmnist import write_kmnist
from test_gan_train import tiny_args as gan_args
from test_translation_cli import tiny_args as tr_args
from test_translation_cli import write_multi30k

GAN_CKPT = "checkpoints/step_00000003"
TR_CKPT = "checkpoints/step_00000002"
TRUNCATED = "is corrupt or truncated"
FIX_CKPT = "delete that checkpoint directory to resume from the previous one"


# -- helpers ------------------------------------------------------------------------------------


def fails(main, argv, capsys) -> str:
    """Run a command in-process; assert exit 2, one stderr line and no traceback; return stderr."""
    with pytest.raises(SystemExit) as exc:
        cli(main, argv)
    out, err = capsys.readouterr()
    assert exc.value.code == 2, err
    assert "Traceback" not in out + err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (bytes) and folder (None) under ``root``: compared before/after a failed command."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def copy_run(src: Path, dst: Path) -> Path:
    """A copy of run ``src`` at ``dst`` that looks as if trained there (its config's out= is ``dst``)."""
    shutil.copytree(src, dst)
    cfg = dst / "config.yaml"
    cfg.write_text(cfg.read_text().replace(f"out: {src}\n", f"out: {dst}\n", 1))
    return dst


def truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def safetensors_reason(path: Path) -> str:
    """What safetensors itself says about a damaged file (the message quotes it)."""
    with pytest.raises(SafetensorError) as exc:
        load_file(str(path))
    return str(exc.value)


class Exploit:
    """Unpickling this runs a shell command that creates ``EXPLOITED`` beside the marker path."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory) -> Path:
    """A finished 3-step GAN run: checkpoint at step 3 with G, D and G_ema (digits.yaml has an EMA)."""
    run = tmp_path_factory.mktemp("gan") / "run"
    gan_train.main(gan_args(run, 3))
    return run


@pytest.fixture(scope="module")
def tr_data(tmp_path_factory) -> Path:
    return write_multi30k(tmp_path_factory.mktemp("trdata") / "data")


def tr_run_args(data: Path, out: Path, steps: int = 2) -> list[str]:
    return tr_args(data, out, steps) + ["train.checkpoint_every=2", "train.eval_every=2"]


@pytest.fixture(scope="module")
def tr_run(tmp_path_factory, tr_data) -> Path:
    """A finished 2-step translation run (tokenizer + checkpoint at step 2)."""
    run = tmp_path_factory.mktemp("tr") / "run"
    tr_train.main(tr_run_args(tr_data, run))
    return run


# -- config: rejected before anything is written ---------------------------------------------------


CONFIG_CASES = [
    ("gan", ["model.foo=1"], "unknown config key 'model.foo' (allowed here: nz, ngf, ndf, g_act, g_act_params, "
                             "d_act, d_act_params, g_batch_norm, d_batch_norm, latent_classes, init)"),
    ("translation", ["train.max_tokens=lots"], "config key 'train.max_tokens': must be an integer (got 'lots')"),
    ("gan", ["model.d_act_params={alpha: -0.2}"],
     "config key 'model.d_act_params': activation 'leaky_relu': alpha must be >= 0 (got -0.2)"),
    ("translation", ["model.act_params={alpha: -0.1}"],
     "config key 'model.act_params': activation 'leaky_relu': alpha must be >= 0 (got -0.1)"),
    ("gan", ["data.image_size=48"], "config key 'data.image_size': must be a power of two from 8 to 128 (got 48)"),
    ("gan", ["train.batch_size=0"], "config key 'train.batch_size': must be >= 1 (got 0)"),
    ("gan", ["steps=0"], "config key 'steps': must be >= 1 (got 0)"),
    ("translation", ["steps=0"], "config key 'steps': must be >= 1 (got 0)"),
    ("gan", ["data.source=imagenet"], "config key 'data.source': must be one of 'digits', 'mnist', 'fashion_mnist', "
                                      "'cifar10', 'celeba', 'folder', 'hf', 'kmnist' (got 'imagenet')"),
    ("translation", ["model.heads=3"], "config key 'model.heads': must divide d_model=32 (got 3)"),
    ("gan", ["seed"], "override 'seed' is not of the form key=value (e.g. seed=1)"),
    ("gan", ["train.mixed_precision=fp16"], "mixed_precision=fp16 needs a CUDA GPU; use bf16 or no on the CPU"),
]


@pytest.mark.parametrize("app, extra, message", CONFIG_CASES, ids=[f"{a}:{e[0]}" for a, e, _ in CONFIG_CASES])
def test_config_values(app, extra, message, tmp_path, tr_data, capsys):
    if extra == ["train.mixed_precision=fp16"] and torch.cuda.is_available():
        pytest.skip("fp16 is valid where a GPU exists")
    out = tmp_path / "run"
    if app == "gan":
        err = fails(gan_train.main, gan_args(out, 2, *extra), capsys)
    else:
        err = fails(tr_train.main, tr_args(tr_data, out, 2) + extra, capsys)
    assert err == f"error: {message}\n"
    assert not out.exists()



@pytest.mark.parametrize("app", ["gan", "translation"])
def test_tensorboard_asked_for_but_not_installed(app, tmp_path, tr_data, capsys, monkeypatch):
    import accelerate.utils

    monkeypatch.setattr(accelerate.utils, "is_tensorboard_available", lambda: False)
    out = tmp_path / "run"
    if app == "gan":
        err = fails(gan_train.main, gan_args(out, 2, "train.tracker=tensorboard"), capsys)
    else:
        err = fails(tr_train.main, tr_args(tr_data, out, 2) + ["train.tracker=tensorboard"], capsys)
    assert err == ("error: train.tracker=tensorboard but tensorboard is not installed; pip install tensorboard "
                   "or set train.tracker=none\n")
    assert not list(out.glob("checkpoints/*"))  # it stopped before the first step

def test_missing_config_file(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    err = fails(gan_train.main, ["--config", str(missing), f"out={tmp_path / 'run'}"], capsys)
    assert err == f"error: config file '{missing}' does not exist (configs live under configs/)\n"
    assert not (tmp_path / "run").exists()


def test_malformed_yaml(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: 3\nmodel:\n  d_model: [32, 64\n")
    err = fails(tr_train.main, ["--config", str(bad), f"out={tmp_path / 'run'}"], capsys)
    assert err == f"error: config file '{bad}' is not valid YAML at line 4; fix its syntax\n"
    assert not (tmp_path / "run").exists()


def test_changed_config_on_resume_is_refused_and_the_run_left_alone(tr_run, tr_data, tmp_path, capsys):
    run = copy_run(tr_run, tmp_path / "run")
    before = snapshot(run)
    err = fails(tr_train.main, tr_run_args(tr_data, run) + ["model.d_ff=128"], capsys)
    assert err == (f"error: '{run}' was trained with another config (model.d_ff: 64 -> 128); only steps= and "
                   "train.progress= may change on resume — use a new out=, or pass --allow-config-change\n")
    assert snapshot(run) == before


# -- output locations -------------------------------------------------------------------------------


def test_out_under_a_regular_file_or_proc_is_unwritable(tmp_path, tr_data, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    err = fails(gan_train.main, gan_args(blocker / "run", 2), capsys)  # root cannot mkdir under a file
    assert err == f"error: cannot write the run directory '{blocker / 'run'}' (Not a directory); choose another out=\n"
    err = fails(tr_train.main, tr_args(tr_data, Path("/proc/leakylab-run"), 2), capsys)
    assert err == ("error: cannot write the run directory '/proc/leakylab-run' (No such file or directory); "
                   "choose another out=\n")
    err = fails(gan_train.main, gan_args(blocker, 2), capsys)
    assert err == f"error: out='{blocker}' is a file, not a directory; choose another out=\n"
    assert blocker.read_text() == "keep me"


def test_out_that_is_a_foreign_folder_is_left_alone(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("do not touch")
    err = fails(gan_train.main, gan_args(mine, 2), capsys)
    assert err == f"error: out='{mine}' exists and is not a leakylab run directory; choose an empty or new out=\n"
    assert snapshot(mine) == {"thesis.tex": b"do not touch"}


def test_sample_into_an_unwritable_place(gan_run, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    before = snapshot(gan_run)
    grid = blocker / "sub" / "grid.png"
    err = fails(gan_sample.main, ["--run", str(gan_run), "--num", "4", "--out", str(grid)], capsys)
    assert err == f"error: cannot write '{grid}' (Not a directory); choose another --out\n"
    err = fails(gan_sample.main, ["--run", str(gan_run), "--num", "4", "--out", "/proc/leakylab/grid.png"], capsys)
    assert err == "error: cannot write '/proc/leakylab/grid.png' (No such file or directory); choose another --out\n"
    folder = blocker / "imgs"
    err = fails(gan_sample.main, ["--run", str(gan_run), "--num", "4", "--images", str(folder)], capsys)
    assert err == f"error: cannot write '{folder}' (Not a directory); choose another --images\n"
    assert blocker.read_text() == "keep me" and snapshot(gan_run) == before


# -- image data -------------------------------------------------------------------------------------


def test_missing_image_folder_then_the_corrected_command_runs(tmp_path, capsys):
    out, nowhere = tmp_path / "run", tmp_path / "nowhere"
    small = ("data.source=folder", "train.batch_size=2", "data.heldout_fraction=0.3")
    err = fails(gan_train.main, gan_args(out, 1, *small, f"data.path={nowhere}"), capsys)
    assert err == f"error: data.path '{nowhere}' does not exist; point data.path at a folder of images\n"
    # Fixing the typo and re-running the same out= must work: the failed attempt trained nothing.
    root = write_folder(tmp_path / "imgs", per_class=3, corrupt=False)
    gan_train.main(gan_args(out, 1, *small, f"data.path={root}"))
    assert (out / "checkpoints" / "step_00000001").is_dir()


def test_image_path_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "cat.png"
    f.write_bytes(b"x")
    err = fails(gan_train.main, gan_args(tmp_path / "run", 2, "data.source=folder", f"data.path={f}"), capsys)
    assert err == f"error: data.path '{f}' is not a folder; point data.path at a folder of images\n"


def test_empty_image_folder(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    err = fails(gan_train.main, gan_args(tmp_path / "run", 2, "data.source=folder", f"data.path={empty}"), capsys)
    assert err == (f"error: data.path '{empty}' holds no readable images (.png, .jpg, .jpeg, .webp, .bmp, .gif); "
                   "point data.path at a folder of images\n")


def test_folder_of_non_image_files(tmp_path, capsys):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notes.txt").write_text("text")
    (folder / "table.csv").write_text("a,b")
    (folder / "fake.png").write_text("a text file named .png")
    before = snapshot(folder)
    err = fails(gan_train.main, gan_args(tmp_path / "run", 2, "data.source=folder", f"data.path={folder}"), capsys)
    assert err == (f"error: data.path '{folder}' holds no readable images (.png, .jpg, .jpeg, .webp, .bmp, .gif); "
                   "1 image file(s) could not be read; point data.path at a folder of images\n")
    assert snapshot(folder) == before


def test_corrupt_images_among_good_ones_are_skipped_and_reported(tmp_path, capsys):
    root = write_folder(tmp_path / "imgs")  # 12 good images, cats/broken.png, dogs/readme.txt
    jpg = sorted((root / "cats").glob("*.jpg"))[0]
    (root / "cats" / "torn.jpg").write_bytes(jpg.read_bytes()[: jpg.stat().st_size // 2])  # a torn download
    before = snapshot(root)
    run = tmp_path / "run"
    gan_train.main(gan_args(run, 2, "data.source=folder", f"data.path={root}", "data.channels=3",
                            "data.heldout_fraction=0.25", "train.batch_size=4"))
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    at = lines.index("skipped 2 unreadable file(s):")
    assert lines[at - 1] == f"folder '{root}': 12 images in 2 classes"
    assert lines[at + 1].startswith(f"  {root / 'cats' / 'broken.png'}: ")
    assert lines[at + 2].startswith(f"  {root / 'cats' / 'torn.jpg'}: ")
    assert lines[at + 3] == "ignored 1 file(s) without an image extension"
    assert (run / "checkpoints" / "step_00000002").is_dir()  # training went on
    assert snapshot(root) == before


KMNIST_FIX = ("point data.root (or $LEAKYLAB_KMNIST_DIR) at the folder holding KMNIST's release files "
              "kmnist-test-imgs.npz and kmnist-test-labels.npz")
KMNIST_REPLACE = "replace it with the release file"


def _npz(path: Path, **arrays) -> None:
    np.savez_compressed(path, **arrays)


def _flip_middle(path: Path) -> None:
    """Damage the compressed member inside the zip (the archive's directory stays readable)."""
    raw = bytearray(path.read_bytes())
    for i in range(len(raw) // 3, len(raw) // 3 + 16):
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))


# name, how to break a good folder (imgs, labels paths), the message after 'error: ' ({imgs}, {labels}, {dir})
KMNIST_CASES = [
    ("missing folder", lambda d, i, l: shutil.rmtree(d), "KMNIST folder '{dir}' does not exist; " + KMNIST_FIX),
    ("missing labels", lambda d, i, l: l.unlink(), "KMNIST file '{labels}' does not exist; " + KMNIST_FIX),
    ("not a zip", lambda d, i, l: i.write_bytes(b"P5 28 28 255\n" + bytes(784)),
     "KMNIST file '{imgs}' is not an .npz archive (a zip of .npy arrays); " + KMNIST_REPLACE),
    ("truncated", lambda d, i, l: truncate(i, i.stat().st_size // 2),
     "KMNIST file '{imgs}' is not an .npz archive (a zip of .npy arrays); " + KMNIST_REPLACE),
    ("damaged member", lambda d, i, l: _flip_middle(i), "KMNIST file '{imgs}' cannot be read (BadZipFile); "
                                                         + KMNIST_REPLACE),
    ("wrong key", lambda d, i, l: _npz(i, images=np.zeros((20, 28, 28), np.uint8)),
     "KMNIST file '{imgs}' has no array 'arr_0' (has: images); " + KMNIST_REPLACE),
    ("wrong shape", lambda d, i, l: _npz(i, arr_0=np.zeros((200, 32, 32), np.uint8)),
     "KMNIST file '{imgs}' holds uint8 (200, 32, 32), not uint8 (N, 28, 28) images; " + KMNIST_REPLACE),
    ("wrong dtype", lambda d, i, l: _npz(i, arr_0=np.zeros((200, 28, 28), np.float32)),
     "KMNIST file '{imgs}' holds float32 (200, 28, 28), not uint8 (N, 28, 28) images; " + KMNIST_REPLACE),
    ("labels not 1-d", lambda d, i, l: _npz(l, arr_0=np.zeros((200, 10), np.uint8)),
     "KMNIST file '{labels}' holds uint8 (200, 10), not integer (N,) labels; " + KMNIST_REPLACE),
    ("labels too few", lambda d, i, l: _npz(l, arr_0=np.zeros(199, np.uint8)),
     "KMNIST file '{labels}' has 199 labels for the 200 images of '{imgs}'; use the two files of one release"),
    ("labels out of range", lambda d, i, l: _npz(l, arr_0=np.full(200, 10, np.int64)),
     "KMNIST file '{labels}' has labels outside 0–9 (10–10); " + KMNIST_REPLACE),
    ("object array", lambda d, i, l: _npz(l, arr_0=np.array([{"label": 0}] * 200, dtype=object)),
     "KMNIST file '{labels}' cannot be read (ValueError); " + KMNIST_REPLACE),
]


@pytest.mark.parametrize("name, damage, message", KMNIST_CASES, ids=[c[0] for c in KMNIST_CASES])
def test_missing_or_malformed_kmnist_files(name, damage, message, tmp_path, capsys):
    folder = write_kmnist(tmp_path / "kmnist", per_class=20)
    imgs, labels = folder / "kmnist-test-imgs.npz", folder / "kmnist-test-labels.npz"
    damage(folder, imgs, labels)
    before = snapshot(tmp_path)
    out = tmp_path / "run"
    err = fails(gan_train.main, gan_args(out, 2, "data.source=kmnist", f"data.root={folder}"), capsys)
    assert err == "error: " + message.format(dir=folder, imgs=imgs, labels=labels) + "\n"
    assert not out.exists() and snapshot(tmp_path) == before


# -- text data --------------------------------------------------------------------------------------


def test_parallel_files_of_unequal_length(tmp_path, capsys):
    data = write_multi30k(tmp_path / "data")
    with gzip.open(data / "val.en.gz", "at", encoding="utf-8") as fh:
        fh.write("A sentence without a partner.\n")
    before = snapshot(data)
    err = fails(tr_train.main, tr_args(data, tmp_path / "run", 2), capsys)
    assert err == (f"error: parallel files '{data / 'val.de.gz'}' (30 lines) and '{data / 'val.en.gz'}' (31 lines) "
                   "differ in length; they must be line-aligned\n")
    assert snapshot(data) == before


def test_non_utf8_bytes_in_a_training_file(tmp_path, capsys):
    data = tmp_path / "plain"
    data.mkdir()
    (data / "train.de").write_bytes("Der Hund läuft.\n".encode() + "Grüß Gott.\n".encode("latin-1"))
    (data / "train.en").write_text("The dog runs.\nHello.\n", encoding="utf-8")
    err = fails(tr_train.main, tr_args(data, tmp_path / "run", 2), capsys)
    assert err == f"error: '{data / 'train.de'}' line 2 is not UTF-8 text (byte 0xfc); re-encode the file as UTF-8\n"


def test_empty_and_over_long_lines_are_dropped_and_counted(tmp_path, capsys):
    data = write_multi30k(tmp_path / "data")  # 300 clean training pairs
    extra = {"de": ["", "Hund " * 81, "Ein hund.", "   "], "en": ["A dog.", "dog", "", "x"]}  # max_words is 80
    for lang, lines in extra.items():
        with gzip.open(data / f"train.{lang}.gz", "at", encoding="utf-8") as fh:
            fh.writelines(x + "\n" for x in lines)
    tr_train.main(tr_args(data, tmp_path / "run", 1))
    out, err = capsys.readouterr()
    assert err == ""
    head = out.splitlines()[0]
    assert head.startswith(f"translation: {data / 'train.de.gz'} + {data / 'train.en.gz'}: train "
                           "{'read': 304, 'kept': 300, 'empty': 3, 'too_long': 1} (+0 over model.max_len tokens), ")
    assert (tmp_path / "run" / "checkpoints" / "step_00000001").is_dir()


def test_missing_text_folder_then_the_corrected_command_runs(tmp_path, tr_data, capsys):
    out, nowhere = tmp_path / "run", tmp_path / "nowhere"
    err = fails(tr_train.main, tr_args(nowhere, out, 1), capsys)
    assert err == (f"error: data.dir='{nowhere}' is not a folder; point it at the parallel files "
                   "(Multi30k raw layout)\n")
    tr_train.main(tr_args(tr_data, out, 1))  # the failed attempt must not pin its config to out=
    assert (out / "checkpoints" / "step_00000001").is_dir()


# -- run directories and checkpoints ----------------------------------------------------------------


def test_run_directory_of_the_other_app(gan_run, tr_run, tr_data, capsys):
    gan_before, tr_before = snapshot(gan_run), snapshot(tr_run)
    not_gan = (f"error: '{tr_run}' is a run directory of the 'translation' app, not 'gan'; use apps.translation "
               "for it or choose another out=\n")
    assert fails(gan_evaluate.main, ["--run", str(tr_run)], capsys) == not_gan
    assert fails(gan_sample.main, ["--run", str(tr_run)], capsys) == not_gan
    assert fails(gan_train.main, gan_args(tr_run, 3), capsys) == not_gan
    not_tr = (f"error: '{gan_run}' is a run directory of the 'gan' app, not 'translation'; use apps.gan "
              "for it or choose another out=\n")
    assert fails(tr_evaluate.main, ["--run", str(gan_run)], capsys) == not_tr
    assert fails(tr_train.main, tr_run_args(tr_data, gan_run), capsys) == not_tr
    assert snapshot(gan_run) == gan_before and snapshot(tr_run) == tr_before


def test_checkpoint_of_the_other_app_inside_a_run(gan_run, tr_run, tmp_path, capsys):
    run = copy_run(gan_run, tmp_path / "run")
    shutil.rmtree(run / GAN_CKPT)
    shutil.copytree(tr_run / TR_CKPT, run / TR_CKPT)
    before = snapshot(run)
    ckpt = run / TR_CKPT
    assert fails(gan_train.main, gan_args(run, 3), capsys) == (
        f"error: checkpoint '{ckpt}' was written by the 'translation' app, not 'gan'\n")
    assert fails(gan_sample.main, ["--run", str(run)], capsys) == (
        f"error: checkpoint '{ckpt}' has no weights for model 'G_ema'; it is damaged or from another app\n")
    assert snapshot(run) == before


def test_unknown_or_corrupt_run_markers(gan_run, tmp_path, capsys):
    run = copy_run(gan_run, tmp_path / "run")
    (run / "leakylab.json").write_text('{"app": "gan", "format": 99}\n')
    assert fails(gan_sample.main, ["--run", str(run)], capsys) == (
        f"error: '{run}' has run-directory format 99; this leakylab reads format 1\n")
    (run / "leakylab.json").write_text("{}\n")  # an emptied marker names no app at all
    before = snapshot(run)
    assert fails(gan_train.main, gan_args(run, 3), capsys) == (
        f"error: '{run / 'leakylab.json'}' is corrupt; this run directory cannot be used\n")
    assert snapshot(run) == before


def test_run_directory_in_use_by_another_process(gan_run, tr_run, tr_data, tmp_path, capsys):
    """RUN/writer.lock names a live process on this machine (our parent): training and evaluating are
    refused; the holder keeps its lock."""
    since = time.mktime((2030, 1, 2, 3, 4, 5, 0, 0, -1))
    host, pid = socket.gethostname(), os.getppid()
    for src, app, train, evaluate, argv in ((gan_run, "gan", gan_train, gan_evaluate, gan_args),
                                            (tr_run, "translation", tr_train, tr_evaluate,
                                             lambda out, steps: tr_run_args(tr_data, out, steps))):
        run = copy_run(src, tmp_path / app)
        (run / "writer.lock").write_text(json.dumps({"host": host, "pid": pid, "start": None, "scope": machine_scope(),
                                                     "what": f"{app} training", "since": since}) + "\n")
        before = snapshot(run)
        expect = (f"error: '{run}' is in use by {app} training (host {host}, pid {pid}, since 2030-01-02 03:04:05); "
                  "wait for it to finish or stop it (one writer per run directory)\n")
        assert fails(train.main, argv(run, 4), capsys) == expect
        assert fails(evaluate.main, ["--run", str(run)], capsys) == expect
        assert snapshot(run) == before


def test_truncated_weights(gan_run, tr_run, tmp_path, capsys):
    run = copy_run(gan_run, tmp_path / "gan")
    weights = run / GAN_CKPT / "models" / "G_ema.safetensors"
    truncate(weights, 100)
    before = snapshot(run)
    expect = (f"error: checkpoint file '{weights}' {TRUNCATED} ({safetensors_reason(weights)}); {FIX_CKPT}\n")
    assert fails(gan_sample.main, ["--run", str(run)], capsys) == expect
    assert fails(gan_evaluate.main, ["--run", str(run)], capsys) == expect
    assert snapshot(run) == before

    run = copy_run(tr_run, tmp_path / "tr")
    weights = run / TR_CKPT / "models" / "model.safetensors"
    truncate(weights, 300)
    before = snapshot(run)
    expect = f"error: checkpoint file '{weights}' {TRUNCATED} ({safetensors_reason(weights)}); {FIX_CKPT}\n"
    assert fails(tr_evaluate.main, ["--run", str(run)], capsys) == expect
    assert snapshot(run) == before


def test_truncated_optimizer_state_on_resume(gan_run, tmp_path, capsys):
    run = copy_run(gan_run, tmp_path / "run")
    state = run / GAN_CKPT / "state.pt"
    truncate(state, 200)
    before = snapshot(run)
    assert fails(gan_train.main, gan_args(run, 3), capsys) == (
        f"error: checkpoint file '{state}' {TRUNCATED} (RuntimeError); {FIX_CKPT}\n")
    assert snapshot(run) == before


def test_truncated_checkpoint_meta_on_resume(gan_run, tmp_path, capsys):
    run = copy_run(gan_run, tmp_path / "run")
    meta = run / GAN_CKPT / "meta.json"
    truncate(meta, 10)
    before = snapshot(run)
    assert fails(gan_train.main, gan_args(run, 3), capsys) == (
        f"error: checkpoint file '{meta}' {TRUNCATED} (JSONDecodeError); {FIX_CKPT}\n")
    assert snapshot(run) == before


def test_pickled_code_in_a_checkpoint_is_refused_not_run(gan_run, tr_run, tr_data, tmp_path, capsys):
    marker = tmp_path / "EXPLOITED"
    run = copy_run(gan_run, tmp_path / "gan")
    state = run / GAN_CKPT / "state.pt"
    torch.save({"step": 3, "optimizers": {}, "extra": {"payload": Exploit(marker)}}, state)
    before = snapshot(run)
    assert fails(gan_train.main, gan_args(run, 3), capsys) == (
        f"error: refusing to load '{state}': it holds pickled objects other than tensors (possibly code); "
        "checkpoints from untrusted sources are never unpickled\n")
    assert snapshot(run) == before

    run = copy_run(tr_run, tmp_path / "tr")
    rng = run / TR_CKPT / "rng_0.pt"
    torch.save({"torch": Exploit(marker)}, rng)
    before = snapshot(run)
    assert fails(tr_train.main, tr_run_args(tr_data, run), capsys) == (
        f"error: refusing to load '{rng}': it holds pickled objects other than tensors (possibly code); "
        "checkpoints from untrusted sources are never unpickled\n")
    assert snapshot(run) == before
    assert not marker.exists()


def test_sample_and_evaluate_a_run_without_a_checkpoint(gan_run, tr_run, tmp_path, capsys, monkeypatch):
    """Like a run killed before its first checkpoint: marker, config (and tokenizer), no weights."""
    gan = copy_run(gan_run, tmp_path / "gan")
    shutil.rmtree(gan / "checkpoints")
    expect = f"error: '{gan}' has no checkpoint yet; train it first\n"
    assert fails(gan_sample.main, ["--run", str(gan)], capsys) == expect
    assert fails(gan_evaluate.main, ["--run", str(gan)], capsys) == expect
    tr = copy_run(tr_run, tmp_path / "tr")
    shutil.rmtree(tr / "checkpoints")
    before = snapshot(tr)
    expect = f"error: '{tr}' has no checkpoint yet; train it first\n"
    assert fails(tr_evaluate.main, ["--run", str(tr)], capsys) == expect
    stdin = tmp_path / "in.txt"
    stdin.write_bytes(b"Der hund.\n")
    with open(stdin) as fh:
        monkeypatch.setattr(sys, "stdin", fh)
        assert fails(tr_translate.main, ["--run", str(tr)], capsys) == expect
    assert snapshot(tr) == before


def test_translate_with_a_missing_run_or_non_utf8_input(tr_run, tmp_path, capsys, monkeypatch):
    stdin = tmp_path / "in.txt"
    stdin.write_bytes("Der hund läuft.\n".encode() + b"Stra\xdfe\n")
    missing = tmp_path / "missing"
    with open(stdin) as fh:
        monkeypatch.setattr(sys, "stdin", fh)
        assert fails(tr_translate.main, ["--run", str(missing)], capsys) == (
            f"error: run directory '{missing}' does not exist; pass the out= of a training run\n")
    with open(stdin) as fh:
        monkeypatch.setattr(sys, "stdin", fh)
        assert fails(tr_translate.main, ["--run", str(tr_run), "--beam", "1"], capsys) == (
            "error: standard input line 2 is not UTF-8 text; re-encode the input as UTF-8\n")


def test_evaluate_refuses_to_change_the_model(gan_run, capsys):
    before = snapshot(gan_run)
    assert fails(gan_evaluate.main, ["--run", str(gan_run), "model.nz=3"], capsys) == (
        "error: override 'model.nz=3': only eval.* settings can change at evaluation time "
        "(the model and data are the run's)\n")
    assert snapshot(gan_run) == before
