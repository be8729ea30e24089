"""Typed config of the GAN app (``configs/gan/*.yaml``).

One dataclass per section; each field's docstring says what it does. Defaults are
pytorch/examples' DCGAN (G: BatchNorm + ReLU, D: LeakyReLU 0.2, N(0, 0.02) init, Adam 2e-4,
β = (0.5, 0.999), batch 64, 64×64 images) so results compare with it; the YAML files tune from
there. Values that cannot work are refused in ``__post_init__`` naming the key
(``common.config.require``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from common.activations import ACTIVATIONS, validate_activation
from common.config import ConfigError, RunConfig, require
from common.loop import LoopConfig
from common.probes import ProbeConfig
from common.remedies import RemedyConfig


def _power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


@dataclass
class DataConfig:
    source: Literal["digits", "mnist", "fashion_mnist", "cifar10", "celeba", "folder", "hf", "kmnist"] = "digits"
    """``digits``: scikit-learn's bundled 8×8 handwritten digits (offline); ``mnist``,
    ``fashion_mnist``, ``cifar10``, ``celeba``: torchvision datasets under ``root``; ``folder``: the
    images under ``path`` (class subfolders become labels); ``hf``: a Hugging Face image dataset;
    ``kmnist``: KMNIST's release ``.npz`` files in ``root`` or ``$LEAKYLAB_KMNIST_DIR``
    (apps/gan/kmnist.py)."""
    image_size: int = 64
    """Side of the square images the GAN sees: a power of two from 8 to 128 (resize + centre crop)."""
    channels: Literal[1, 3] = 3
    """1 = grayscale, 3 = RGB; images are converted as they load."""
    root: str = "data"
    """Where torchvision datasets live (and are downloaded to when ``download`` and a network exist).
    ``kmnist``: the folder of its release files; left at ``data``, ``$LEAKYLAB_KMNIST_DIR`` is used
    when set (so a root given explicitly wins over the variable)."""
    download: bool = True
    """Let torchvision download a dataset that is not under ``root`` yet."""
    path: str = ""
    """``folder``: the image folder (nested class folders or flat; png/jpg/jpeg/webp/bmp/gif).
    ``hf``: a dataset saved with ``save_to_disk`` (a local folder) — else ``hf_name`` is used."""
    hf_name: str = ""
    """``hf``: a Hugging Face hub dataset name (needs the network or the local cache)."""
    hf_split: str = "train"
    """``hf``: the split to read."""
    hf_image_column: str = "image"
    """``hf``: the column holding the images."""
    hf_label_column: str = "label"
    """``hf``: the column holding integer class labels; missing or empty = unlabelled."""
    heldout_fraction: float = 0.1
    """Share of the images held out from training for evaluation (the real-vs-real FID floor and
    the extractor's accuracy). Datasets with an official test split (torchvision's, KMNIST with its
    train files) use it instead; KMNIST's test split alone holds out this share of every class."""
    split_seed: int = 0
    """Seed of the held-out split; fixed apart from the run seed so every run sees the same split."""
    max_images: int = 0
    """Use at most this many training images (0 = all): quick tries and tests."""
    workers: int = 0
    """DataLoader worker processes decoding images (folders, CelebA, hf); 0 = in the training process."""

    def __post_init__(self) -> None:
        require(_power_of_two(self.image_size) and 8 <= self.image_size <= 128, "image_size",
                "must be a power of two from 8 to 128", self.image_size)
        require(0.0 < self.heldout_fraction < 1.0, "heldout_fraction", "must be in (0, 1)", self.heldout_fraction)
        require(self.split_seed >= 0, "split_seed", "must be >= 0", self.split_seed)
        require(self.max_images >= 0, "max_images", "must be >= 0 (0 = all)", self.max_images)
        require(self.workers >= 0, "workers", "must be >= 0", self.workers)


@dataclass
class ModelConfig:
    nz: int = 100
    """Size of the latent vector z ~ N(0, I)."""
    ngf: int = 64
    """Generator width: channels of its last hidden layer (doubling towards the 4×4 input block)."""
    ndf: int = 64
    """Discriminator width: channels of its first layer (doubling towards the 4×4 output block)."""
    g_act: str = "relu"
    """Generator hidden activation, by name from common.activations (relu, leaky_relu,
    fused_leaky_relu, prelu, elu, gelu, silu, ...)."""
    g_act_params: dict[str, Any] = field(default_factory=dict)
    """Keyword parameters of ``g_act``, e.g. {alpha: 0.2}."""
    d_act: str = "leaky_relu"
    """Discriminator hidden activation."""
    d_act_params: dict[str, Any] = field(default_factory=lambda: {"alpha": 0.2})
    """Keyword parameters of ``d_act``."""
    g_batch_norm: bool = True
    """BatchNorm after every hidden generator layer (DCGAN); off makes G's convs carry biases."""
    d_batch_norm: bool = True
    """BatchNorm after every discriminator conv except the first (DCGAN)."""
    latent_classes: int = 0
    """Discrete latent code (0 = off, pytorch/examples): the first ``latent_classes`` entries of z
    become the √k-scaled one-hot of their argmax (apps.gan.model.discrete_code), so G can switch
    between separate modes (digit classes) instead of passing through ambiguous in-between
    images. The noise itself is unchanged."""
    init: Literal["dcgan", "kaiming"] = "dcgan"
    """``dcgan``: N(0, 0.02) weights, BN scales N(1, 0.02); ``kaiming``: leaky-aware Kaiming
    (common.init.leaky_init_) with the gain of the activation after each layer and exact fans."""

    def __post_init__(self) -> None:
        for key in ("nz", "ngf", "ndf"):
            require(getattr(self, key) >= 1, key, "must be >= 1", getattr(self, key))
        require(0 <= self.latent_classes <= self.nz, "latent_classes", f"must be in [0, nz={self.nz}] (0 = off)",
                self.latent_classes)
        for key, params in (("g_act", self.g_act_params), ("d_act", self.d_act_params)):
            name = getattr(self, key)
            require(name in ACTIVATIONS, key, f"must be one of {', '.join(ACTIVATIONS)}", name)
            try:  # a bad parameter is reported here, naming the key
                validate_activation(name, params)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{key}_params", str(exc)) from None


@dataclass
class OptimConfig:
    lr_g: float = 2e-4
    """Adam learning rate of the generator."""
    lr_d: float = 2e-4
    """Adam learning rate of the discriminator."""
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    """Adam betas for both networks (DCGAN's 0.5 momentum)."""
    loss: Literal["nonsaturating", "hinge"] = "nonsaturating"
    """``nonsaturating``: DCGAN's BCE (G maximises log D(G(z))); ``hinge``: SNGAN/BigGAN's hinge."""
    schedule: Literal["constant", "linear"] = "constant"
    """``constant`` (pytorch/examples) or ``linear``: both learning rates fall linearly from
    ``decay_start``·steps to ``min_lr_ratio``·lr at ``steps`` (re-running with a larger ``steps``
    re-plans the decay, so an extended run differs from one trained that long from the start)."""
    decay_start: float = 0.5
    """``linear``: where the decay begins, as a fraction of ``steps``."""
    min_lr_ratio: float = 0.0
    """``linear``: the final learning rate as a fraction of the initial one."""
    r1_gamma: float = 0.0
    """R1 penalty γ/2·E‖∇ₓD(x)‖² on D's real inputs, added to D's loss (0 = off, pytorch/examples).
    Costs a double backward through D on the steps it runs; the logged loss_d includes it."""
    r1_every: int = 1
    """Apply R1 every this many steps, scaled by the interval (StyleGAN2's lazy regularisation)."""

    def __post_init__(self) -> None:
        require(self.r1_gamma >= 0, "r1_gamma", "must be >= 0 (0 = off)", self.r1_gamma)
        require(self.r1_every >= 1, "r1_every", "must be >= 1", self.r1_every)
        require(self.lr_g > 0, "lr_g", "must be > 0", self.lr_g)
        require(self.lr_d > 0, "lr_d", "must be > 0", self.lr_d)
        require(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas",
                "must be two numbers in [0, 1)", self.betas)
        require(0.0 <= self.decay_start < 1.0, "decay_start", "must be in [0, 1)", self.decay_start)
        require(0.0 <= self.min_lr_ratio <= 1.0, "min_lr_ratio", "must be in [0, 1]", self.min_lr_ratio)


def lr_factor(optim: OptimConfig, step: int, steps: int) -> float:
    """The learning-rate multiplier at ``step`` (0-based) of a ``steps``-step run: a pure function."""
    if optim.schedule == "constant":
        return 1.0
    start = int(optim.decay_start * steps)
    if step < start:
        return 1.0
    frac = (step - start) / max(1, steps - start)
    return 1.0 - (1.0 - optim.min_lr_ratio) * frac


@dataclass
class TrainConfig(LoopConfig):
    """The GAN's training keys, after the loop keys every app shares (common.loop.LoopConfig)."""

    batch_size: int = 64
    """Images per optimisation step over all processes (each process takes its share)."""
    ema_decay: float = 0.0
    """Exponential moving average of G's weights (0 = off); sampling and evaluation use the EMA
    generator when on. Typical: 0.999. Warms up as min(decay, (1 + step) / (10 + step))."""
    augment: float = 0.0
    """DiffAugment translation of every image D sees (real and generated, in both updates): the
    largest shift as a fraction of the image side (0 = off, pytorch/examples; 0.125 = DiffAugment's).
    Keeps D from memorising a small training set."""
    sample_every: int = 500
    """A grid from fixed noise to samples/step_N.png every this many steps (0 = only at the end)."""
    fid_every: int = 0
    """Periodic FID during training every this many steps (0 = off), on ``fid_samples`` images
    with the evaluation extractor; logged to metrics.jsonl as ``fid`` (with ``fid_extractor``)."""
    fid_samples: int = 500
    """Generated (and real training) images of the periodic FID."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.batch_size >= 1, "batch_size", "must be >= 1", self.batch_size)
        require(0.0 <= self.augment <= 0.5, "augment", "must be in [0, 0.5] (a fraction of the image side)",
                self.augment)
        require(0.0 <= self.ema_decay < 1.0, "ema_decay", "must be in [0, 1) (0 = off)", self.ema_decay)
        for key in ("sample_every", "fid_every"):
            require(getattr(self, key) >= 0, key, "must be >= 0 (0 = off)", getattr(self, key))
        require(self.fid_samples >= 10, "fid_samples", "must be >= 10", self.fid_samples)


@dataclass
class ClassifierConfig:
    """Recipe of the ``classifier`` extractor (architecture in apps/gan/classifier.py). Every field
    enters the extractor's cache key and hash, so changing one trains (and names) a new extractor."""

    width: int = 32
    """Channels of the first conv pair (the second pair has twice as many)."""
    features: int = 128
    """Size of the penultimate layer: the feature vector FID/KID are computed on."""
    steps: int = 2000
    """Optimisation steps (batches of ``batch_size``): the training cost, the same for 1,000
    images as for 100,000 (apps/gan/classifier.py has the measurements behind the default)."""
    epochs: int = 0
    """At most this many passes over the training images (0 = no cap), for a set so small that
    ``steps`` would pass over it too often. Runs made when the recipe counted passes stored 40
    here; on their small datasets that keeps the step count they had."""
    batch_size: int = 64
    lr: float = 1e-3
    """Adam learning rate (halved at 50% and 75% of the steps)."""
    shift: int = 1
    """Random translation augmentation of up to ± this many pixels (0 = none)."""
    seed: int = 0
    """Seed of the extractor's init, data order and augmentation (not the run's seed)."""

    def __post_init__(self) -> None:
        for key in ("width", "features", "steps", "batch_size"):
            require(getattr(self, key) >= 1, key, "must be >= 1", getattr(self, key))
        require(self.epochs >= 0, "epochs", "must be >= 0 (0 = no cap)", self.epochs)
        require(self.lr > 0, "lr", "must be > 0", self.lr)
        require(self.shift >= 0, "shift", "must be >= 0", self.shift)
        require(self.seed >= 0, "seed", "must be >= 0", self.seed)


@dataclass
class EvalConfig:
    extractor: Literal["auto", "classifier", "inception"] = "auto"
    """Feature extractor of FID/KID: ``classifier`` (a small CNN trained on the dataset's labelled
    training images, cached), ``inception`` (torchmetrics' InceptionV3; needs torch-fidelity), or
    ``auto``: classifier where labels exist, else inception."""
    inception_weights: str = ""
    """Local InceptionV3 weights file for offline use (torch-fidelity's pt_inception-2015-12-05)."""
    num_fake: int = 0
    """Generated images for FID/KID; 0 = as many as the held-out images, so FID and its real-vs-real
    floor use the same counts."""
    num_real: int = 0
    """Training images as the FID/KID reference; 0 = all (capped at 50,000)."""
    num_class_samples: int = 1000
    """Generated images classified for the class histogram (classes covered, KL, confidence)."""
    kid_subsets: int = 100
    """KID: number of random subsets."""
    kid_subset_size: int = 0
    """KID: images per subset; 0 = min(1000, half the smaller count)."""
    batch_size: int = 250
    """Images per generator / extractor batch."""
    seed: int = 1234
    """Seed of the evaluation noise and KID subsets (independent of training)."""
    use_ema: bool = True
    """Evaluate the EMA generator when the run has one."""
    cache_dir: str = ""
    """Where trained classifier extractors are cached; empty = $LEAKYLAB_CACHE or .cache/leakylab."""
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)

    def __post_init__(self) -> None:
        for key in ("num_fake", "num_real", "kid_subset_size"):
            require(getattr(self, key) >= 0, key, "must be >= 0 (0 = automatic)", getattr(self, key))
        require(self.num_fake == 0 or self.num_fake >= 10, "num_fake", "must be 0 (automatic) or >= 10",
                self.num_fake)
        require(self.num_class_samples >= 1, "num_class_samples", "must be >= 1", self.num_class_samples)
        require(self.kid_subsets >= 1, "kid_subsets", "must be >= 1", self.kid_subsets)
        require(self.batch_size >= 1, "batch_size", "must be >= 1", self.batch_size)


@dataclass
class GanConfig(RunConfig):
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    probes: ProbeConfig = field(default_factory=ProbeConfig)
    """Dead-unit probes on G and D (probes.jsonl)."""
    remedies: RemedyConfig = field(default_factory=RemedyConfig)
    """Dying-unit remedies and weight decay (biases and norms never decay unless
    ``remedies.decay_biases``)."""
