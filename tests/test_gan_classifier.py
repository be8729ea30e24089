"""The classifier extractor's training: sized by steps (not by the dataset), visible while it runs,
and cached under a key that changes with the recipe."""

from __future__ import annotations

import pytest

from apps.gan import classifier
from apps.gan.config import ClassifierConfig, DataConfig
from apps.gan.data import load_data

TINY = {"width": 4, "features": 8}


def digits(max_images: int = 0):
    return load_data(DataConfig(source="digits", image_size=8, channels=1, heldout_fraction=0.25,
                                max_images=max_images))


@pytest.fixture
def counted_steps(monkeypatch) -> list[int]:
    """Batch sizes of the training steps taken (each step augments its batch once)."""
    calls: list[int] = []
    shift = classifier._shift

    def counting(x, s, g):
        calls.append(len(x))
        return shift(x, s, g)

    monkeypatch.setattr(classifier, "_shift", counting)
    return calls


def test_training_takes_its_steps_on_any_dataset_size_and_epochs_caps_them(counted_steps, capsys):
    for n in (200, 0):  # 200 training images, then all 1,348
        counted_steps.clear()
        model, acc = classifier.train_classifier(digits(n), ClassifierConfig(steps=7, **TINY))
        assert len(counted_steps) == 7 and set(counted_steps) == {64} and 0.0 <= acc <= 1.0
        assert not model.training
    out, err = capsys.readouterr()
    assert "on 200 images of sklearn digits 8px for 7 steps of 64, about " in out
    assert "on 1348 images of sklearn digits 8px for 7 steps of 64, about " in out
    assert "trained 7 steps (0.3 passes) on 1348 images" in out
    assert err.count("classifier: 100%") == 2 and "7/7" in err and "\r" not in err  # bar lines, not redraws
    counted_steps.clear()
    classifier.train_classifier(digits(200), ClassifierConfig(steps=50, epochs=2, **TINY), show=False)
    assert len(counted_steps) == 2 * (200 // 64)  # two passes of three batches, fewer than 50 steps
    assert capsys.readouterr().err == ""  # show=False: no bar
    assert classifier.planned_steps(ClassifierConfig(steps=3000, epochs=40), 10_000) == 3000
    assert classifier.planned_steps(ClassifierConfig(steps=3000, epochs=40), 1348) == 40 * 21


def test_the_cache_is_reused_for_the_same_recipe_and_keyed_by_every_recipe_field(tmp_path, capsys, monkeypatch):
    data = digits(200)
    _, first = classifier.get_classifier(data, ClassifierConfig(steps=5, **TINY), str(tmp_path))
    _, again = classifier.get_classifier(data, ClassifierConfig(steps=5, **TINY), str(tmp_path))
    out = capsys.readouterr().out
    assert out.count("training a 10-class CNN") == 1 and again == first  # the second call loaded it
    weights = next(tmp_path.glob("classifier-*.safetensors"))
    assert f"cached as {weights} for every later run" in out
    _, other = classifier.get_classifier(data, ClassifierConfig(steps=6, **TINY), str(tmp_path))
    assert len(list(tmp_path.glob("classifier-*.safetensors"))) == 2 and other["hash"] != first["hash"]
    key = classifier.recipe_key(ClassifierConfig(steps=5, **TINY), 10, 1)
    for change in ({"steps": 6}, {"epochs": 3}, {"batch_size": 32}, {"lr": 2e-3}, {"shift": 0}, {"seed": 1}):
        assert classifier.recipe_key(ClassifierConfig(**{"steps": 5, **TINY, **change}), 10, 1) != key, change
    monkeypatch.setattr(classifier, "ARCH_VERSION", classifier.ARCH_VERSION + 1)  # new training code
    assert classifier.recipe_key(ClassifierConfig(steps=5, **TINY), 10, 1) != key


def test_about_rounds_for_people():
    assert classifier.about(0.2) == "about 1 s" and classifier.about(42) == "about 42 s"
    assert classifier.about(200) == "about 3 min"
