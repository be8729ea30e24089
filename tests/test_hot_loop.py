"""The training step never makes the host wait for the device (issue 14).

Inside a step of either app (GAN: ``Stepper``; translation: ``local_batch`` + ``train_step``; both:
the loop's ``after_step`` between log points) nothing reads a tensor's value on the host, random
draws are made on the model's device, and a batch bound for a GPU is staged in pinned memory and
copied without blocking. On the CPU this is pinned by spies: on ``Tensor.item``/``float()``/
``tolist``/... (counted when the project's own code calls them), on the generators' device
argument, and on a stand-in CUDA copy. Where a GPU exists, a few real steps of each app also run
under ``torch.cuda.set_sync_debug_mode("error")``, which turns any synchronising CUDA call into an
exception.
"""

from __future__ import annotations

import functools
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

import apps.gan.augment as augment_mod
import apps.gan.step as step_mod
import apps.translation.train as tr_train
from apps.gan import train as gan_train
from apps.translation.decode import pad_batch
from common.hostcopy import pins_for, to_device
from common.loop import LogWindow, TrainLoop
from common.rng import torch_generator
from test_gan_train import tiny_args as gan_args
from test_translation_cli import tiny_args as tr_args
from test_translation_cli import write_multi30k

ROOT = Path(__file__).resolve().parents[1]
PROJECT = (ROOT / "apps", ROOT / "common")
# between log points: no log, divergence check, probe read or checkpoint inside the counted steps
QUIET = ["train.log_every=100", "train.check_every=100", "train.checkpoint_every=100", "probes.every=1",
         "probes.window=100"]


class HostReads:
    """Counts reads of tensor values on the host made by the project's own code (apps/, common/)
    while a wrapped region runs, per region name."""

    NAMES = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__", "__index__")

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.region: str | None = None
        self.calls: dict[str, list[str]] = {}
        for name in self.NAMES:
            monkeypatch.setattr(torch.Tensor, name, self._spy(name, getattr(torch.Tensor, name)))

    def _spy(self, name, original):
        def spy(t, *args, **kwargs):
            if self.region is not None:
                frame = sys._getframe(1)
                path = Path(frame.f_code.co_filename).resolve()
                if any(path.is_relative_to(p) for p in PROJECT):
                    where = f"{path.relative_to(ROOT)}:{frame.f_lineno}"
                    self.calls.setdefault(self.region, []).append(f"{name} at {where}")
            return original(t, *args, **kwargs)
        return spy

    def wrap(self, region: str, fn):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            outer, self.region = self.region, region
            try:
                return fn(*args, **kwargs)
            finally:
                self.region = outer
        return wrapped


def count_gan_steps(monkeypatch, reads: HostReads) -> None:
    monkeypatch.setattr(step_mod.Stepper, "__call__", reads.wrap("step", step_mod.Stepper.__call__))
    monkeypatch.setattr(TrainLoop, "after_step", reads.wrap("step", TrainLoop.after_step))
    monkeypatch.setattr(LogWindow, "read", reads.wrap("log", LogWindow.read))


def count_translation_steps(monkeypatch, reads: HostReads) -> None:
    for name in ("local_batch", "train_step"):
        monkeypatch.setattr(tr_train, name, reads.wrap("step", getattr(tr_train, name)))
    monkeypatch.setattr(TrainLoop, "after_step", reads.wrap("step", TrainLoop.after_step))
    monkeypatch.setattr(LogWindow, "add", reads.wrap("step", LogWindow.add))
    monkeypatch.setattr(LogWindow, "read", reads.wrap("log", LogWindow.read))


# ---------------------------------------------------------------- CPU: what can be pinned here


def test_gan_steps_read_nothing_on_the_host_and_draw_on_the_model_device(tmp_path, monkeypatch):
    reads = HostReads(monkeypatch)
    count_gan_steps(monkeypatch, reads)
    draws: list[tuple[str, torch.device]] = []
    copies: list[torch.device] = []
    devices: list[torch.device] = []

    def spy_generator(seed, purpose, *indices, device=None):  # None: left to the default (the CPU)
        draws.append((purpose, device and torch.device(device)))
        return torch_generator(seed, purpose, *indices, device=device or "cpu")

    def spy_copy(t, device):
        copies.append(torch.device(device))
        return to_device(t, device)

    original_call = step_mod.Stepper.__call__

    def call(self, step, real):
        devices.append(self.accelerator.device)
        return original_call(self, step, real)

    monkeypatch.setattr(step_mod.Stepper, "__call__", call)
    monkeypatch.setattr(step_mod, "torch_generator", spy_generator)
    monkeypatch.setattr(augment_mod, "torch_generator", spy_generator)
    monkeypatch.setattr(step_mod, "to_device", spy_copy)
    # augment (digits config) and R1 (every 4th step) on; bias warming's hooks and the probes' too
    gan_train.main(gan_args(tmp_path / "run", 5, *QUIET, "remedies.warming_gamma=0.1", "remedies.warming_steps=3"))

    assert len(devices) == 5 and set(devices) == {torch.device("cpu")}
    assert reads.calls.get("step", []) == []
    assert reads.calls.get("log"), "the spy sees the log step's reads (else it would see nothing at all)"
    assert [p for p, _ in draws] == ["gan.noise", "gan.augment"] * 5  # one generator each per step
    assert {d for _, d in draws} == set(devices) and set(copies) == set(devices) and len(copies) == 5


def test_the_step_draws_are_the_streams_numbers_on_the_cpu():
    """Drawn with a device generator, the CPU numbers are still the named streams' (resume and the
    golden runs depend on them)."""
    z = step_mod.step_noise(5, 17, 6, 3, torch.device("cpu"))
    assert torch.equal(z, torch.randn(6, 3, generator=torch_generator(5, "gan.noise", 17)))
    offs = augment_mod.random_offsets(12, 2, augment_mod.shift_generator(5, 17, "cpu"))
    assert torch.equal(offs, torch.randint(-2, 3, (12, 2), generator=torch_generator(5, "gan.augment", 17)))
    assert offs.abs().max() <= 2 and offs.device.type == "cpu"


def test_translation_steps_read_nothing_on_the_host(tmp_path, monkeypatch):
    reads = HostReads(monkeypatch)
    count_translation_steps(monkeypatch, reads)
    batches: list[tuple] = []
    original = tr_train.local_batch
    monkeypatch.setattr(tr_train, "local_batch", lambda *a: batches.append(original(*a)) or batches[-1])
    data = write_multi30k(tmp_path / "data", sizes=(120, 10, 10))
    tr_train.main(tr_args(data, tmp_path / "run", 6) + QUIET + ["train.eval_every=100", "train.eval_sentences=2"])

    assert len(batches) == 6
    for src, tgt_in, tgt_out, scale in batches:
        assert {t.device for t in (src, tgt_in, tgt_out)} == {torch.device("cpu")} and isinstance(scale, float)
    assert reads.calls.get("step", []) == []
    assert reads.calls.get("log"), "the spy sees the log step's reads"


class FakeCudaCopies:
    """Stands in for CUDA on a machine without one: pinning marks a tensor, and a copy to a
    ``cuda`` device records (pinned?, non_blocking?) and keeps the tensor where it is."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.built_pinned: list[bool] = []
        self.copies: list[tuple[bool, bool]] = []
        full, to = torch.full, torch.Tensor.to

        def fake_full(*args, pin_memory=False, **kwargs):
            self.built_pinned.append(bool(pin_memory))
            t = full(*args, **kwargs)
            t.fake_pinned = bool(pin_memory)
            return t

        def fake_pin(t):
            c = t.clone()
            c.fake_pinned = True
            return c

        def fake_to(t, *args, **kwargs):
            dev = args[0] if args else kwargs.get("device")
            if isinstance(dev, (str, torch.device)) and torch.device(dev).type == "cuda":
                self.copies.append((getattr(t, "fake_pinned", False), bool(kwargs.get("non_blocking", False))))
                return t
            return to(t, *args, **kwargs)

        monkeypatch.setattr(torch, "full", fake_full)
        monkeypatch.setattr(torch.Tensor, "pin_memory", fake_pin)
        monkeypatch.setattr(torch.Tensor, "is_pinned", lambda t: getattr(t, "fake_pinned", False))
        monkeypatch.setattr(torch.Tensor, "to", fake_to)


def test_batches_bound_for_a_gpu_are_pinned_and_copied_without_blocking(monkeypatch):
    fake = FakeCudaCopies(monkeypatch)
    seqs = [[5, 6, 7], [8], []]
    padded = pad_batch(seqs, 0, "cuda:0")  # a token batch: built pinned, copied asynchronously
    assert padded.tolist() == [[5, 6, 7], [8, 0, 0], [0, 0, 0]]
    assert fake.built_pinned == [True] and fake.copies == [(True, True)]
    to_device(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), torch.device("cuda", 1))  # a GAN batch from the loader
    assert fake.copies[-1] == (True, True)
    assert pins_for("cuda") and not pins_for("cpu") and not pins_for(torch.device("meta"))

    fake.copies.clear()
    assert pad_batch(seqs, 0, "cpu").tolist() == padded.tolist()  # on the CPU: neither pinned nor copied
    assert fake.built_pinned[-1] is False and fake.copies == []


# ---------------------------------------------------------------- GPU: the real check


@contextmanager
def strict_sync(monkeypatch, wrap_points):
    """Every wrapped function runs with CUDA's sync debug mode at "error": a synchronising call
    (a blocking copy, .item(), a stream sync) inside raises."""
    def strict(fn):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            torch.cuda.set_sync_debug_mode("error")
            try:
                return fn(*args, **kwargs)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return wrapped

    for owner, name in wrap_points:
        monkeypatch.setattr(owner, name, strict(getattr(owner, name)))
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA's sync debug mode needs a GPU")


@needs_cuda
def test_gan_steps_on_a_gpu_never_sync(tmp_path, monkeypatch):
    calls = []
    original = step_mod.Stepper.__call__
    monkeypatch.setattr(step_mod.Stepper, "__call__", lambda self, s, r: (calls.append(s), original(self, s, r)))
    with strict_sync(monkeypatch, [(step_mod.Stepper, "__call__"), (TrainLoop, "after_step")]):
        gan_train.main(gan_args(tmp_path / "run", 5, *QUIET, "train.cpu=false", "remedies.warming_gamma=0.1",
                                "remedies.warming_steps=3"))
    assert calls == list(range(5))


@needs_cuda
def test_translation_steps_on_a_gpu_never_sync(tmp_path, monkeypatch):
    data = write_multi30k(tmp_path / "data", sizes=(120, 10, 10))
    calls = []
    original = tr_train.train_step
    monkeypatch.setattr(tr_train, "train_step", lambda step, *a: (calls.append(step), original(step, *a))[1])
    with strict_sync(monkeypatch, [(tr_train, "local_batch"), (tr_train, "train_step"), (TrainLoop, "after_step"),
                                   (LogWindow, "add")]):
        tr_train.main(tr_args(data, tmp_path / "run", 6) + QUIET + ["train.cpu=false", "train.eval_every=100",
                                                                    "train.eval_sentences=2"])
    assert calls == list(range(6))


# ---------------------------------------------------------------- gradient layouts (DDP buckets)


@pytest.mark.parametrize("image_size, ndf", [(8, 4), (16, 32)])
def test_every_gradient_has_its_parameters_layout_under_r1(image_size, ndf):
    """D's last conv gets its R1 gradient as a transposed view ([1, C, 4, 4] with the size-1 dim's
    stride 16); DDP compares strides exactly with its buckets, so the model restores the layout."""
    from apps.gan.model import Discriminator, Generator

    d = Discriminator(image_size, 1, ndf=ndf)
    x = torch.randn(4, 1, image_size, image_size, requires_grad=True)
    out = d(x)
    step_mod.r1_penalty(out, x).backward()  # the double backward alone: the layout it hands over
    assert {n: p.grad.stride() for n, p in d.named_parameters()} == {n: p.stride() for n, p in d.named_parameters()}
    g = Generator(image_size, 1, nz=8, ngf=4)  # its last layer's weight [4, 1, 4, 4] has a size-1 dim too
    d(g(torch.randn(4, 8))).mean().backward()
    assert all(p.grad.stride() == p.stride() for p in g.parameters())
