"""KMNIST as an image source: its release .npz files read and checked, the class-balanced held-out
split, the folder found through data.root or $LEAKYLAB_KMNIST_DIR, and the real test split when
the environment provides it (CI does)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from apps.gan import train as train_cmd
from apps.gan.config import DataConfig
from apps.gan.data import load_data
from apps.gan.images import resize_tensor
from apps.gan.kmnist import ENV, balanced_split
from common.errors import UserError
from test_gan_train import records

KMNIST_YAML = Path(__file__).resolve().parents[1] / "configs" / "gan" / "kmnist.yaml"


def write_kmnist(folder: Path, per_class: int = 20, split: str = "test", seed: int = 0) -> Path:
    """KMNIST release files of ``split`` with ``per_class`` images of each of 10 classes, in a
    shuffled order: white strokes (255) on black (0), the label readable from the stroke's row."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = np.random.default_rng(seed).permutation(np.repeat(np.arange(10, dtype=np.uint8), per_class))
    images = np.zeros((len(labels), 28, 28), dtype=np.uint8)
    for i, c in enumerate(labels):
        images[i, 2 * c + 4: 2 * c + 8, 4:24] = 255  # a 4-pixel bar whose height gives the class
    np.savez_compressed(folder / f"kmnist-{split}-imgs.npz", arr_0=images)
    np.savez_compressed(folder / f"kmnist-{split}-labels.npz", arr_0=labels)
    return folder


def kmnist(root: str = "data", **kw) -> DataConfig:
    return DataConfig(source="kmnist", root=root, image_size=kw.pop("image_size", 32), channels=1, **kw)


def test_test_split_alone_is_split_by_class_resized_and_deterministic(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    folder = write_kmnist(tmp_path / "k", per_class=20)
    data = load_data(kmnist(str(folder)))
    assert data.name == "KMNIST 32px" and data.num_classes == 10 and data.labelled
    assert data.train.images.shape == (180, 1, 32, 32) and data.heldout.images.shape == (20, 1, 32, 32)
    assert data.train.images.dtype == torch.uint8
    assert int(data.train.images.min()) == 0 and int(data.train.images.max()) == 255
    assert torch.bincount(data.heldout.labels, minlength=10).tolist() == [2] * 10  # 10% of every class
    assert torch.bincount(data.train.labels, minlength=10).tolist() == [18] * 10
    assert "180 training images, 20 held out (2 per class)" in data.notes
    # the labels stay with their images: the bar's row tells the class after resizing too
    pairs = set()
    for part in (data.train, data.heldout):
        rows = part.images[:, 0].float().mean(2).argmax(1)  # the brightest row of each image
        pairs |= set(zip(part.labels.tolist(), rows.tolist()))
    assert len(pairs) == 10 and len({row for _, row in pairs}) == 10  # one row per class, ten rows
    # the same resize as the other 28×28 sources (torchvision's MNIST path)
    raw = torch.from_numpy(np.load(folder / "kmnist-test-imgs.npz")["arr_0"])[:, None]
    labels = torch.from_numpy(np.load(folder / "kmnist-test-labels.npz")["arr_0"]).long()
    tr, ho = balanced_split(labels, 0.1, 0)
    assert torch.equal(data.heldout.images, resize_tensor(raw[ho], 32, 1))
    assert torch.equal(data.train.images, resize_tensor(raw[tr], 32, 1))
    again = load_data(kmnist(str(folder)))
    assert torch.equal(again.heldout.images, data.heldout.images) and again.fingerprint == data.fingerprint
    other = load_data(kmnist(str(folder), split_seed=1))
    assert other.fingerprint != data.fingerprint and torch.bincount(other.heldout.labels).tolist() == [2] * 10
    small = load_data(kmnist(str(folder), image_size=16, heldout_fraction=0.25, max_images=50))
    assert small.train.images.shape == (50, 1, 16, 16) and len(small.heldout) == 50  # 5 per class


def test_balanced_split_is_disjoint_complete_and_fixed_by_its_seed():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 7)
    tr, ho = balanced_split(labels, 0.1, seed=3)
    assert sorted(tr.tolist() + ho.tolist()) == list(range(87))
    assert torch.bincount(labels[ho]).tolist() == [5, 3, 1]  # round(7 × 0.1) = 1: at least one per class
    assert torch.equal(balanced_split(labels, 0.1, seed=3)[1], ho)
    assert not torch.equal(balanced_split(labels, 0.1, seed=4)[1], ho)
    assert torch.equal(ho, ho.sort().values) and torch.equal(tr, tr.sort().values)


def test_train_files_train_and_the_whole_test_split_is_held_out(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    folder = write_kmnist(tmp_path / "k", per_class=3)
    write_kmnist(folder, per_class=7, split="train", seed=1)
    data = load_data(kmnist(str(folder), image_size=8))
    assert len(data.train) == 70 and len(data.heldout) == 30
    assert torch.bincount(data.heldout.labels).tolist() == [3] * 10
    assert data.notes.endswith("70 training images (train split), 30 held out (test split)")


def test_data_root_wins_over_the_environment_variable(tmp_path, monkeypatch):
    a, b = write_kmnist(tmp_path / "a", per_class=10), write_kmnist(tmp_path / "b", per_class=20)
    monkeypatch.chdir(tmp_path)  # the default root 'data' does not exist here
    monkeypatch.setenv(ENV, str(a))
    assert len(load_data(kmnist()).train) == 90  # root left at its default: the variable
    assert len(load_data(kmnist(str(b))).train) == 180  # root given: it wins
    monkeypatch.delenv(ENV)
    with pytest.raises(UserError, match="KMNIST folder 'data' does not exist; point data.root"):
        load_data(kmnist())
    write_kmnist(tmp_path / "data", per_class=30)
    assert len(load_data(kmnist()).train) == 270  # neither: the default root itself


def test_the_kmnist_config_trains_with_its_periodic_fid(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    folder = write_kmnist(tmp_path / "k", per_class=10)
    run = tmp_path / "run"
    train_cmd.main(["--config", str(KMNIST_YAML), f"out={run}", "steps=2", f"data.root={folder}",
                    "train.batch_size=16", "train.fid_every=1", "train.fid_samples=20", "train.progress=false",
                    f"eval.cache_dir={tmp_path / 'cache'}", "eval.classifier.steps=2", "eval.classifier.width=4",
                    "eval.classifier.features=8", "probes.every=1", "probes.window=2"])
    fids = [r for r in records(run) if "fid" in r]
    assert [r["step"] for r in fids] == [1, 2] and all(r["fid_extractor"] == "classifier" for r in fids)
    assert (run / "checkpoints" / "step_00000002").is_dir()


@pytest.mark.skipif(not os.environ.get(ENV), reason=f"${ENV} is not set (.ci/run sets it from ../shared)")
def test_the_real_kmnist_test_split():
    data = load_data(kmnist())
    assert len(data.train) == 9000 and len(data.heldout) == 1000
    assert torch.bincount(data.heldout.labels, minlength=10).tolist() == [100] * 10
    assert torch.bincount(data.train.labels, minlength=10).tolist() == [900] * 10
    assert data.train.images.shape[1:] == (1, 32, 32) and data.train.images.dtype == torch.uint8
    mean = float(data.train.images.float().mean())
    assert 20 < mean < 80 and int(data.train.images.max()) == 255  # white ink on a black page
    assert load_data(kmnist()).fingerprint == data.fingerprint
