"""The translation model: a Transformer encoder–decoder whose FFN activation is a switch.

Two implementations share one interface (``forward`` for teacher forcing, ``encode`` +
``start_state`` + ``step`` for decoding) so training, decoding and the benchmarks treat them alike:

- :class:`Seq2SeqTransformer` — ours. Attention through ``F.scaled_dot_product_attention``, an
  incremental key/value cache for decoding, and the FFN activation built by
  ``common.activations.make_activation`` so ReLU, LeakyReLU, the fused kernel, GELU, ... are one
  config key apart (and the probes find them as activation modules).
- :class:`TorchTransformerSeq2Seq` — the plain ``torch.nn.Transformer`` with the same embeddings
  and sizes: the reference our throughput and BLEU are measured against.

Both share the source/target embedding (joint BPE vocabulary) and, with ``tie_embeddings``, the
output projection too (Press & Wolf 2017), which matters on a 29k-sentence corpus like Multi30k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from apps.translation.config import ModelConfig
from common.activations import carries_bias, make_activation


def sinusoidal_positions(max_len: int, dim: int) -> Tensor:
    """The fixed sin/cos position table of Vaswani et al. (no parameters to overfit)."""
    pos = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(max_len, dim)
    table[:, 0::2] = torch.sin(pos * div)
    table[:, 1::2] = torch.cos(pos * div)
    return table


class Embedder(nn.Module):
    """Token embedding × √d plus sinusoidal positions, then dropout; shared by both sides."""

    def __init__(self, vocab_size: int, dim: int, max_len: int, dropout: float, pad_id: int):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        nn.init.normal_(self.tok.weight, 0.0, dim**-0.5)
        with torch.no_grad():
            self.tok.weight[pad_id].zero_()
        self.register_buffer("pos", sinusoidal_positions(max_len, dim), persistent=False)
        self.scale = math.sqrt(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, ids: Tensor, offset: int = 0) -> Tensor:
        t = ids.shape[1]
        if offset + t > self.pos.shape[0]:
            raise ValueError(f"sequence of {offset + t} tokens exceeds model.max_len={self.pos.shape[0]}")
        return self.drop(self.tok(ids) * self.scale + self.pos[offset : offset + t])


class Attention(nn.Module):
    """Multi-head attention; self-attention uses one fused QKV projection (as torch's MHA does)."""

    def __init__(self, dim: int, heads: int, dropout: float, cross: bool):
        super().__init__()
        self.heads, self.cross, self.dropout = heads, cross, dropout
        if cross:
            self.q = nn.Linear(dim, dim)
            self.kv = nn.Linear(dim, 2 * dim)
        else:
            self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def _split(self, x: Tensor) -> Tensor:  # (B, T, D) -> (B, H, T, D/H)
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)

    def project_kv(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """Cross-attention keys/values of the encoder output, computed once per sentence."""
        k, v = self.kv(memory).chunk(2, dim=-1)
        return self._split(k), self._split(v)

    def forward(
        self,
        x: Tensor,
        mask: Optional[Tensor] = None,
        *,
        memory: Optional[Tensor] = None,
        kv: Optional[tuple[Tensor, Tensor]] = None,
        cache: Optional[dict] = None,
        causal: bool = False,
    ) -> Tensor:
        if self.cross:
            q = self._split(self.q(x))
            k, v = kv if kv is not None else self.project_kv(memory)
        else:
            q, k, v = (self._split(t) for t in self.qkv(x).chunk(3, dim=-1))
            if cache is not None:  # incremental decoding: append this step's keys/values
                if "k" in cache:
                    k = torch.cat([cache["k"], k], dim=2)
                    v = torch.cat([cache["v"], v], dim=2)
                cache["k"], cache["v"] = k, v
        drop = self.dropout if self.training else 0.0
        if causal and mask is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        b, h, t, dh = y.shape
        return self.out(y.transpose(1, 2).reshape(b, t, h * dh))


class FeedForward(nn.Module):
    """Linear → activation (the switch) → dropout → Linear. ``act`` is what the probes watch."""

    def __init__(self, dim: int, hidden: int, cfg: ModelConfig):
        super().__init__()
        # A fused activation holds the per-unit bias itself, so fc1 then goes without one and the
        # leaky and fused-leaky models have the same parameters.
        self.fc1 = nn.Linear(dim, hidden, bias=not carries_bias(cfg.activation, **cfg.act_params))
        self.act = make_activation(cfg.activation, channels=hidden, dim=-1, **cfg.act_params)
        self.drop = nn.Dropout(cfg.act_dropout)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.drop(self.act(self.fc1(x))))


class Block(nn.Module):
    """One encoder (self-attn + FFN) or decoder (self-attn + cross-attn + FFN) layer.

    ``norm_first`` picks pre-LN (stable without warm-up, needs a final LayerNorm) or post-LN
    (the original; slightly better on small data with a warm-up, which we always use).
    """

    def __init__(self, cfg: ModelConfig, decoder: bool):
        super().__init__()
        d = cfg.d_model
        self.norm_first = cfg.norm_first
        self.self_attn = Attention(d, cfg.heads, cfg.attn_dropout, cross=False)
        self.cross_attn = Attention(d, cfg.heads, cfg.attn_dropout, cross=True) if decoder else None
        self.ffn = FeedForward(d, cfg.d_ff, cfg)
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(3 if decoder else 2))
        self.drop = nn.Dropout(cfg.dropout)

    def _sub(self, i: int, x: Tensor, fn) -> Tensor:
        if self.norm_first:
            return x + self.drop(fn(self.norms[i](x)))
        return self.norms[i](x + self.drop(fn(x)))

    def forward(self, x, self_mask=None, *, causal=False, cross_kv=None, cross_mask=None, cache=None):
        x = self._sub(0, x, lambda h: self.self_attn(h, self_mask, cache=cache, causal=causal))
        if self.cross_attn is not None:
            x = self._sub(1, x, lambda h: self.cross_attn(h, cross_mask, kv=cross_kv))
        return self._sub(len(self.norms) - 1, x, self.ffn)


def key_padding_mask(src: Tensor, pad_id: int) -> Tensor:
    """Boolean (B, 1, 1, S) mask, True where attention is allowed (non-pad source tokens)."""
    return (src != pad_id)[:, None, None, :]


@dataclass
class DecodeState:
    """What ``step`` needs between calls; ``reorder`` follows beam search's survivor indices."""

    memory_kv: list  # per decoder layer: (k, v) of the encoder output
    src_mask: Tensor
    caches: list  # per decoder layer: {"k", "v"} self-attention cache
    length: int = 0

    def reorder(self, index: Tensor) -> "DecodeState":
        kv = [(k.index_select(0, index), v.index_select(0, index)) for k, v in self.memory_kv]
        caches = [{n: t.index_select(0, index) for n, t in c.items()} for c in self.caches]
        return DecodeState(kv, self.src_mask.index_select(0, index), caches, self.length)


class Seq2SeqTransformer(nn.Module):
    """Encoder–decoder Transformer with a shared joint-BPE embedding and a switchable FFN."""

    def __init__(self, cfg: ModelConfig, vocab_size: int, pad_id: int):
        super().__init__()
        self.cfg, self.pad_id, self.vocab_size = cfg, pad_id, vocab_size
        self.embed = Embedder(vocab_size, cfg.d_model, cfg.max_len, cfg.dropout, pad_id)
        self.encoder = nn.ModuleList(Block(cfg, decoder=False) for _ in range(cfg.enc_layers))
        self.decoder = nn.ModuleList(Block(cfg, decoder=True) for _ in range(cfg.dec_layers))
        # Pre-LN leaves the residual stream un-normalised, so it needs a final LayerNorm per side.
        self.enc_norm = nn.LayerNorm(cfg.d_model) if cfg.norm_first else nn.Identity()
        self.dec_norm = nn.LayerNorm(cfg.d_model) if cfg.norm_first else nn.Identity()
        self.generator = nn.Linear(cfg.d_model, vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.generator.weight = self.embed.tok.weight

    def encode(self, src: Tensor) -> tuple[Tensor, Tensor]:
        """Encoder output (B, S, D) and the source padding mask."""
        mask = key_padding_mask(src, self.pad_id)
        x = self.embed(src)
        for block in self.encoder:
            x = block(x, mask)
        return self.enc_norm(x), mask

    def decode(self, tgt_in: Tensor, memory: Tensor, src_mask: Tensor) -> Tensor:
        """Teacher-forced decoder logits (B, T, V). Target padding sits only at the end of each
        row and its positions are ignored by the loss, so a causal mask is all that is needed."""
        x = self.embed(tgt_in)
        for block in self.decoder:
            x = block(x, causal=True, cross_kv=block.cross_attn.project_kv(memory), cross_mask=src_mask)
        return self.generator(self.dec_norm(x))

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        memory, mask = self.encode(src)
        return self.decode(tgt_in, memory, mask)

    # -- incremental decoding -------------------------------------------------------------
    def start_state(self, memory: Tensor, src_mask: Tensor) -> DecodeState:
        kv = [block.cross_attn.project_kv(memory) for block in self.decoder]
        return DecodeState(kv, src_mask, [{} for _ in self.decoder])

    def step(self, last: Tensor, state: DecodeState) -> Tensor:
        """Log-probabilities (B, V) of the next token given the last one (B,) and the cache."""
        x = self.embed(last[:, None], offset=state.length)
        for block, kv, cache in zip(self.decoder, state.memory_kv, state.caches):
            x = block(x, None, cross_kv=kv, cross_mask=state.src_mask, cache=cache)
        state.length += 1
        return F.log_softmax(self.generator(self.dec_norm(x))[:, 0].float(), dim=-1)


@dataclass
class PrefixState:
    """Decoding state of the reference model: it recomputes the whole prefix each step."""

    memory: Tensor
    src_pad: Tensor  # (B, S) True at padding, torch's convention
    prefix: Optional[Tensor] = None

    def reorder(self, index: Tensor) -> "PrefixState":
        prefix = None if self.prefix is None else self.prefix.index_select(0, index)
        return PrefixState(self.memory.index_select(0, index), self.src_pad.index_select(0, index), prefix)


class TorchTransformerSeq2Seq(nn.Module):
    """The plain ``torch.nn.Transformer`` (ReLU or GELU FFN, applied functionally, so the probes
    see no activation modules) with the same embedder and generator as ours."""

    def __init__(self, cfg: ModelConfig, vocab_size: int, pad_id: int):
        super().__init__()
        self.cfg, self.pad_id, self.vocab_size = cfg, pad_id, vocab_size
        self.embed = Embedder(vocab_size, cfg.d_model, cfg.max_len, cfg.dropout, pad_id)
        self.transformer = nn.Transformer(
            d_model=cfg.d_model,
            nhead=cfg.heads,
            num_encoder_layers=cfg.enc_layers,
            num_decoder_layers=cfg.dec_layers,
            dim_feedforward=cfg.d_ff,
            dropout=cfg.dropout,
            activation=cfg.activation,  # "relu" or "gelu" (checked by ModelConfig)
            batch_first=True,
            norm_first=cfg.norm_first,
        )
        # Inference would otherwise take the prototype nested-tensor path (a warning on every call,
        # zeros at padded positions); training never does, so this changes no trained result.
        self.transformer.encoder.enable_nested_tensor = False
        self.transformer.encoder.use_nested_tensor = False
        self.generator = nn.Linear(cfg.d_model, vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.generator.weight = self.embed.tok.weight

    def encode(self, src: Tensor) -> tuple[Tensor, Tensor]:
        pad = src == self.pad_id
        return self.transformer.encoder(self.embed(src), src_key_padding_mask=pad), pad

    def _decode(self, tgt_in: Tensor, memory: Tensor, src_pad: Tensor) -> Tensor:
        t = tgt_in.shape[1]
        causal = nn.Transformer.generate_square_subsequent_mask(t, device=tgt_in.device, dtype=memory.dtype)
        x = self.transformer.decoder(
            self.embed(tgt_in), memory, tgt_mask=causal, tgt_is_causal=True, memory_key_padding_mask=src_pad
        )
        return self.generator(x)

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        memory, pad = self.encode(src)
        return self._decode(tgt_in, memory, pad)

    def start_state(self, memory: Tensor, src_pad: Tensor) -> PrefixState:
        return PrefixState(memory, src_pad)

    def step(self, last: Tensor, state: PrefixState) -> Tensor:
        prefix = last[:, None] if state.prefix is None else torch.cat([state.prefix, last[:, None]], 1)
        state.prefix = prefix
        logits = self._decode(prefix, state.memory, state.src_pad)[:, -1]
        return F.log_softmax(logits.float(), dim=-1)


def build_model(cfg: ModelConfig, vocab_size: int, pad_id: int) -> nn.Module:
    """The model named by ``cfg.impl`` (``leakylab`` ours, ``torch`` the reference)."""
    if cfg.impl == "torch":
        return TorchTransformerSeq2Seq(cfg, vocab_size, pad_id)
    return Seq2SeqTransformer(cfg, vocab_size, pad_id)


def init_model(model: nn.Module, cfg: ModelConfig) -> nn.Module:
    """Initialise ``model`` as ``cfg.init`` says.

    Attention and other projections get Xavier-uniform (what ``torch.nn.Transformer`` uses, so the
    reference and ours start alike). ``leaky_kaiming``: each FFN is then re-initialised by
    ``common.init.leaky_init_`` — fc1 with the Kaiming gain of the activation that follows it
    (sqrt(2/(1+α²)) for LeakyReLU α), fc2 with gain 1, biases 0. ``xavier`` keeps Xavier everywhere.
    The shared embedding keeps N(0, 1/d) (it is scaled by √d on input).
    """
    from common.init import leaky_init_

    if isinstance(model, TorchTransformerSeq2Seq):
        return model  # nn.Transformer initialises itself (Xavier); the embedder already has N(0, 1/d)
    embed = model.embed.tok.weight
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p is embed:
                continue
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
            elif name.endswith(".bias") and "norm" not in name:
                p.zero_()
    if cfg.init == "leaky_kaiming":
        for module in model.modules():
            if isinstance(module, FeedForward):
                leaky_init_(module, method="order")
    return model


def count_parameters(model: nn.Module) -> int:
    """Distinct trainable parameters (a tied weight counts once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def probe_parts(model: nn.Module) -> dict[str, nn.Module]:
    """The named parts the probes and remedies report on: our encoder and decoder stacks
    separately (their dead units differ), the reference ``torch.nn.Transformer`` as one ``model``."""
    if isinstance(model, Seq2SeqTransformer):
        return {"encoder": model.encoder, "decoder": model.decoder}
    return {"model": model}
