"""Typed config of the translation app (``configs/translation/*.yaml``).

One dataclass per section; each field's docstring says what it does. Values that cannot work
are refused in ``__post_init__`` with the key named (``common.config.require``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from common.activations import ACTIVATIONS, validate_activation
from common.config import ConfigError, RunConfig, require
from common.loop import LoopConfig
from common.probes import ProbeConfig
from common.remedies import RemedyConfig

SPLITS = ("train", "valid", "test")
# The Multi30k file names accepted wherever a split is named.
SPLIT_ALIASES = {"val": "valid", "validation": "valid", "dev": "valid", "test_2016_flickr": "test"}


def canonical_split(name: str) -> str:
    """``val`` → ``valid``, ``test_2016_flickr`` → ``test``; unknown names are returned as is."""
    return SPLIT_ALIASES.get(name, name)


@dataclass
class DataConfig:
    source: Literal["embedded", "files", "hf"] = "embedded"
    """``embedded``: the generated English→German grammar corpus; ``files``: local parallel files
    under ``dir``; ``hf``: a Hugging Face dataset (``hf_name``; needs the network or a cache)."""
    dir: str = ""
    """Folder of local parallel files; empty means the environment variable LEAKYLAB_MULTI30K_DIR."""
    format: Literal["auto", "pairs", "tsv", "jsonl"] = "auto"
    """Local layout: ``pairs`` = ``<split>.<lang>[.gz]`` line-aligned files (the Multi30k raw layout),
    ``tsv`` = ``<split>.tsv[.gz]`` (src<TAB>tgt), ``jsonl`` = ``<split>.jsonl[.gz]`` ({lang: text});
    ``auto`` picks whichever exists."""
    src_lang: str = "en"
    """Source language code (file suffix / JSON key / HF column)."""
    tgt_lang: str = "de"
    """Target language code."""
    hf_name: str = "bentrevett/multi30k"
    """Hugging Face dataset name for ``source: hf``."""
    max_words: int = 100
    """Training pairs with a side longer than this many words are dropped (and counted)."""
    embedded_seed: int = 0
    """Seed of the generated corpus (independent of the run seed, so all seeds see the same data)."""

    def __post_init__(self) -> None:
        require(self.src_lang != self.tgt_lang, "tgt_lang", "must differ from src_lang", self.tgt_lang)
        require(self.max_words >= 1, "max_words", "must be >= 1", self.max_words)
        require(self.embedded_seed >= 0, "embedded_seed", "must be >= 0", self.embedded_seed)


@dataclass
class TokenizerConfig:
    vocab_size: int = 8000
    """Size of the joint (source+target) BPE vocabulary, special tokens included."""
    min_frequency: int = 2
    """A merge must occur this often in the training split."""

    def __post_init__(self) -> None:
        require(self.vocab_size >= 16, "vocab_size", "must be >= 16", self.vocab_size)
        require(self.min_frequency >= 1, "min_frequency", "must be >= 1", self.min_frequency)


@dataclass
class ModelConfig:
    impl: Literal["leakylab", "torch"] = "leakylab"
    """``leakylab``: our Transformer with a switchable FFN activation; ``torch``: plain
    ``torch.nn.Transformer`` (ReLU) of the same size, the reference."""
    d_model: int = 256
    """Width of the residual stream and embeddings."""
    heads: int = 4
    """Attention heads (must divide d_model)."""
    enc_layers: int = 3
    """Encoder blocks (self-attention + feed-forward) in the stack."""
    dec_layers: int = 3
    """Decoder blocks (self-attention, cross-attention + feed-forward) in the stack."""
    d_ff: int = 1024
    """Hidden width of each feed-forward block (where the activation acts)."""
    activation: str = "relu"
    """FFN activation by name from common.activations (relu, leaky_relu, fused_leaky_relu, gelu, ...)."""
    act_params: dict[str, Any] = field(default_factory=dict)
    """Keyword parameters of the activation, e.g. {alpha: 0.2}."""
    dropout: float = 0.1
    """Dropout on embeddings and after every sub-layer."""
    attn_dropout: float = 0.0
    """Dropout on attention weights."""
    act_dropout: float = 0.0
    """Dropout after the FFN activation."""
    norm_first: bool = False
    """Pre-LN (true) or post-LN (false, the original Transformer; best for our shallow models)."""
    tie_embeddings: bool = True
    """Share source embedding, target embedding and output projection (joint vocabulary)."""
    max_len: int = 256
    """Longest token sequence the model accepts (positional table size)."""
    init: Literal["leaky_kaiming", "xavier"] = "leaky_kaiming"
    """FFN initialisation: ``leaky_kaiming`` (common.init, gain of the chosen activation) or ``xavier``
    (as torch.nn.Transformer); attention projections are Xavier either way."""

    def __post_init__(self) -> None:
        for key in ("d_model", "heads", "enc_layers", "dec_layers", "d_ff", "max_len"):
            require(getattr(self, key) >= 1, key, "must be >= 1", getattr(self, key))
        require(self.d_model % self.heads == 0, "heads", f"must divide d_model={self.d_model}", self.heads)
        require(self.d_model % 2 == 0, "d_model", "must be even (sinusoidal positions)", self.d_model)
        for key in ("dropout", "attn_dropout", "act_dropout"):
            require(0.0 <= getattr(self, key) < 1.0, key, "must be in [0, 1)", getattr(self, key))
        require(self.max_len >= 8, "max_len", "must be >= 8", self.max_len)
        require(self.activation in ACTIVATIONS, "activation", f"must be one of {', '.join(ACTIVATIONS)}",
                self.activation)
        require(self.impl != "torch" or (self.activation in ("relu", "gelu") and not self.act_params), "activation",
                "model.impl=torch (torch.nn.Transformer) supports only relu or gelu without act_params", self.activation)
        try:  # validate the parameters now, not deep inside model construction
            validate_activation(self.activation, self.act_params, channels=self.d_ff, dim=-1)
        except ValueError as exc:
            raise ConfigError("act_params", str(exc)) from None


@dataclass
class OptimConfig:
    lr: float = 7e-4
    """Peak learning rate (reached after ``warmup`` steps)."""
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    """AdamW's (β1, β2); β2 = 0.98 as in Vaswani et al. rather than torch's default 0.999."""
    warmup: int = 400
    """Linear warm-up steps."""
    schedule: Literal["inverse_sqrt", "cosine", "linear", "constant"] = "inverse_sqrt"
    """Decay after warm-up; cosine/linear reach ``min_lr_ratio``·lr at ``steps``."""
    min_lr_ratio: float = 0.05
    """The floor of the decay as a fraction of ``lr``: where cosine/linear end, and the least
    ``inverse_sqrt`` may fall to (``constant`` ignores it)."""
    clip_norm: float = 1.0
    """Gradient-norm clipping threshold (0 disables)."""
    label_smoothing: float = 0.1
    """Share of each target token's probability mass spread uniformly over the vocabulary in the
    training cross-entropy (0 = plain cross-entropy)."""

    def __post_init__(self) -> None:
        require(self.lr > 0, "lr", "must be > 0", self.lr)
        require(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas",
                "must be two numbers in [0, 1)", self.betas)
        require(self.warmup >= 0, "warmup", "must be >= 0", self.warmup)
        require(0 <= self.min_lr_ratio <= 1, "min_lr_ratio", "must be in [0, 1]", self.min_lr_ratio)
        require(self.clip_norm >= 0, "clip_norm", "must be >= 0", self.clip_norm)
        require(0 <= self.label_smoothing < 1, "label_smoothing", "must be in [0, 1)", self.label_smoothing)


@dataclass
class TrainConfig(LoopConfig):
    """The translation training keys, after the loop keys every app shares (common.loop.LoopConfig)."""

    max_tokens: int = 4096
    """Tokens (source + target, padding excluded) per global batch, split over processes."""
    eval_every: int = 1000
    """Validation loss and BLEU every this many steps (and at the end)."""
    eval_sentences: int = 500
    """Validation sentences decoded (greedily) for the periodic BLEU; 0 = all."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.max_tokens >= 16, "max_tokens", "must be >= 16", self.max_tokens)
        require(self.eval_every >= 1, "eval_every", "must be >= 1", self.eval_every)
        require(self.eval_sentences >= 0, "eval_sentences", "must be >= 0", self.eval_sentences)


@dataclass
class DecodeConfig:
    beam: int = 5
    """Beam width of evaluate/translate (1 = greedy)."""
    length_penalty: float = 1.0
    """GNMT length penalty exponent: scores are divided by ((5 + length) / 6) ** length_penalty."""
    max_len_a: float = 1.5
    """Length limit per source token: hypotheses stop at max_len_a · source length + max_len_b
    tokens (EOS included; capped by ``model.max_len``)."""
    max_len_b: int = 10
    """Constant part of that limit, so short sources still get room."""
    batch_size: int = 64
    """Sentences decoded together."""

    def __post_init__(self) -> None:
        require(self.beam >= 1, "beam", "must be >= 1", self.beam)
        require(self.length_penalty >= 0, "length_penalty", "must be >= 0", self.length_penalty)
        require(self.max_len_a >= 0, "max_len_a", "must be >= 0", self.max_len_a)
        require(self.max_len_b >= 1, "max_len_b", "must be >= 1", self.max_len_b)
        require(self.batch_size >= 1, "batch_size", "must be >= 1", self.batch_size)


@dataclass
class TranslationConfig(RunConfig):
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    probes: ProbeConfig = field(default_factory=ProbeConfig)
    remedies: RemedyConfig = field(default_factory=RemedyConfig)
    """Dying-unit remedies and weight decay (``remedies.weight_decay``; biases and norms never
    decay unless ``remedies.decay_biases``)."""
