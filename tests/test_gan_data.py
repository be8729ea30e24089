"""GAN data: digits split, image folders (corrupt files skipped and reported), Hugging Face
datasets from a local copy, resizing, and the model shapes the data feeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from apps.gan import train as train_cmd
from apps.gan.config import DataConfig, ModelConfig
from apps.gan.data import load_data
from apps.gan.folder import scan_folder
from apps.gan.images import to_square
from apps.gan.model import build_models, init_models
from common.errors import UserError
from test_gan_train import records, tiny_args


def write_folder(root: Path, per_class: int = 6, corrupt: bool = True) -> Path:
    """Two class folders of small RGB/gray images in three formats, plus a corrupt PNG and a text file."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(("cats", "dogs")):
        d = root / name / ("nested" if c else "")
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            arr = rng.integers(0, 255, (10 + i, 12, 3), dtype=np.uint8)
            img = Image.fromarray(arr) if i % 2 else Image.fromarray(arr[:, :, 0])  # RGB and grayscale
            img.save(d / f"img{i}.{('png', 'jpg', 'webp')[i % 3]}")
    if corrupt:
        (root / "cats" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 4)
        (root / "dogs" / "readme.txt").write_text("not an image")
    return root


def test_folder_with_a_corrupt_file_is_scanned_reported_and_trainable(tmp_path, capsys):
    root = write_folder(tmp_path / "imgs")
    scan = scan_folder(root)
    assert len(scan.files) == 12 and scan.classes == ["cats", "dogs"]
    assert [p.name for p, _ in scan.skipped] == ["broken.png"] and scan.ignored == 1
    assert sorted(set(scan.labels)) == [0, 1] and scan.labels.count(0) == 6
    data = load_data(DataConfig(source="folder", path=str(root), image_size=8, channels=1, heldout_fraction=0.25))
    assert len(data.train) == 9 and len(data.heldout) == 3 and data.labelled
    x, y = data.train.__getitems__([0, 1, 2])
    assert x.shape == (3, 1, 8, 8) and x.dtype == torch.uint8 and y.tolist() == data.train.labels[:3].tolist()
    assert "skipped 1 unreadable file(s)" in data.notes and "broken.png" in data.notes

    run = tmp_path / "run"
    train_cmd.main(tiny_args(run, 2, "data.source=folder", f"data.path={root}", "data.channels=3",
                             "data.heldout_fraction=0.25", "train.batch_size=4", "data.workers=1"))
    assert "skipped 1 unreadable file(s)" in capsys.readouterr().out
    assert [r["step"] for r in records(run)] == [2]


def test_flat_folder_is_unlabelled_and_empty_or_missing_folders_are_user_errors(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(3):
        Image.new("RGB", (9, 7), (i * 40, 0, 0)).save(flat / f"{i}.png")
    scan = scan_folder(flat)
    assert scan.labels is None and len(scan.files) == 3
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no readable images"):
        scan_folder(tmp_path / "empty")
    with pytest.raises(UserError, match="does not exist"):
        scan_folder(tmp_path / "nope")


def test_to_square_resizes_shorter_side_and_centre_crops():
    arr = np.zeros((20, 40, 3), dtype=np.uint8)
    arr[:, 10:30] = 255  # a white centre band as wide as the crop
    out = to_square(Image.fromarray(arr), 10, 3)
    assert out.shape == (3, 10, 10)
    assert out[:, :, 1:9].min() == 255  # the crop kept the centre band (its edge pixels antialiased)
    assert out[:, :, 0].max() < 255
    rgba = Image.fromarray(np.full((6, 6, 4), 200, dtype=np.uint8), "RGBA")
    assert to_square(rgba, 4, 1).shape == (1, 4, 4)


def test_digits_split_is_fixed_and_disjoint():
    a = load_data(DataConfig(source="digits", image_size=16, channels=1, heldout_fraction=0.25))
    b = load_data(DataConfig(source="digits", image_size=16, channels=1, heldout_fraction=0.25))
    assert (len(a.train), len(a.heldout), a.num_classes) == (1348, 449, 10)
    assert a.fingerprint == b.fingerprint and torch.equal(a.train.images, b.train.images)
    train_rows = {bytes(x.numpy()) for x in a.train.images}
    assert sum(bytes(x.numpy()) in train_rows for x in a.heldout.images) < 10  # only exact duplicate digits
    assert a.train.images.max() == 255 and a.train.images.min() == 0
    c = load_data(DataConfig(source="digits", image_size=16, channels=1, heldout_fraction=0.2))
    assert c.fingerprint != a.fingerprint


def test_hf_dataset_from_a_local_copy(tmp_path):
    datasets = pytest.importorskip("datasets")
    rng = np.random.default_rng(1)
    imgs = [Image.fromarray(rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)) for _ in range(10)]
    ds = datasets.Dataset.from_dict({"image": imgs, "label": [i % 2 for i in range(10)]},
                                    features=datasets.Features({"image": datasets.Image(),
                                                                "label": datasets.ClassLabel(names=["a", "b"])}))
    ds.save_to_disk(str(tmp_path / "hf"))
    data = load_data(DataConfig(source="hf", path=str(tmp_path / "hf"), image_size=8, channels=3,
                                heldout_fraction=0.2))
    assert (len(data.train), len(data.heldout), data.num_classes) == (8, 2, 2)
    x, y = data.train.__getitems__([0, 1])
    assert x.shape == (2, 3, 8, 8) and set(y.tolist()) <= {0, 1}
    with pytest.raises(UserError, match="hf_image_column"):
        load_data(DataConfig(source="hf", path=str(tmp_path / "hf"), hf_image_column="img"))


@pytest.mark.parametrize("size", [8, 16, 32, 64, 128])
def test_models_fit_every_supported_size(size):
    g, d = build_models(ModelConfig(ngf=4, ndf=4, nz=8), size, 3)
    init_models(g, d, "kaiming")
    x = g(torch.randn(2, 8))
    assert x.shape == (2, 3, size, size) and d(x).shape == (2,)
    assert x.abs().max() <= 1.0


def test_fused_activation_takes_the_bias_from_the_conv():
    g, d = build_models(ModelConfig(ngf=4, ndf=4, nz=8, g_act="fused_leaky_relu", g_batch_norm=False,
                                    d_act="fused_leaky_relu", d_act_params={"alpha": 0.2}), 16, 1)
    assert g.main.conv1.bias is None and g.main.act1.bias is not None
    assert d.main.conv1.bias is None and d.main.act1.bias.shape == (4,)
    plain, _ = build_models(ModelConfig(ngf=4, ndf=4, nz=8, g_act="leaky_relu", g_batch_norm=False), 16, 1)
    assert plain.main.conv1.bias is not None  # no BatchNorm and no fused bias: the conv carries one
    assert sum(p.numel() for p in g.parameters()) == sum(p.numel() for p in plain.parameters())
