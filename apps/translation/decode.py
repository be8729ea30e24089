"""Greedy and batched beam-search decoding, and text-in/text-out translation.

Both decoders work with either model implementation through ``encode`` / ``start_state`` /
``step`` (log-probabilities of the next token) and ``state.reorder(index)``.

Beam search keeps ``beam`` live hypotheses per sentence; each step it looks at the best
``2·beam`` extensions, finishes those that end in EOS (ranked within the first ``beam``), and
keeps the best ``beam`` that do not. A sentence is done when it has ``beam`` finished hypotheses or
reaches its length limit (``max_len_a · source length + max_len_b``); finished sentences leave the
batch, so the batch shrinks as it goes. Final scores are log-probabilities divided by the GNMT
length penalty ((5 + length) / 6) ** ``length_penalty``. With ``beam=1`` it takes exactly the
greedy path.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from apps.translation.config import DecodeConfig
from common.hostcopy import pins_for, to_device

NEG_INF = float("-inf")


def length_limits(src: Tensor, pad_id: int, a: float, b: int, cap: int) -> Tensor:
    """Most tokens each hypothesis may have (EOS included), per sentence."""
    src_len = (src != pad_id).sum(1).to(torch.float64)
    return (a * src_len + b).floor().long().clamp(1, cap)


@torch.no_grad()
def greedy_search(model: nn.Module, src: Tensor, *, bos: int, eos: int, pad: int, max_len_a: float = 1.5,
                  max_len_b: int = 10) -> list[list[int]]:
    """Argmax decoding; returns the token ids of each sentence without BOS/EOS."""
    limits = length_limits(src, pad, max_len_a, max_len_b, model.cfg.max_len - 1)
    memory, mask = model.encode(src)
    state = model.start_state(memory, mask)
    n = src.shape[0]
    last = torch.full((n,), bos, dtype=torch.long, device=src.device)
    done = torch.zeros(n, dtype=torch.bool, device=src.device)
    steps = []
    for t in range(int(limits.max())):
        tok = model.step(last, state).argmax(-1)
        tok = torch.where(done, torch.full_like(tok, pad), tok)
        steps.append(tok)
        done |= (tok == eos) | (limits <= t + 1)
        if bool(done.all()):  # one host sync per step: decoding is latency-bound anyway
            break
        last = tok
    out = torch.stack(steps, 1).tolist()
    return [_strip(row, eos, pad) for row in out]


def _strip(row: Sequence[int], eos: int, pad: int) -> list[int]:
    ids = []
    for x in row:
        if x == eos or x == pad:
            break
        ids.append(x)
    return ids


@torch.no_grad()
def beam_search(model: nn.Module, src: Tensor, *, beam: int, bos: int, eos: int, pad: int,
                length_penalty: float = 1.0, max_len_a: float = 1.5, max_len_b: int = 10) -> list[list[int]]:
    """Batched beam search (see module docs); returns the best hypothesis of each sentence."""
    dev = src.device
    n_sent, k = src.shape[0], beam
    limits = length_limits(src, pad, max_len_a, max_len_b, model.cfg.max_len - 1)
    memory, mask = model.encode(src)
    state = model.start_state(memory, mask).reorder(torch.arange(n_sent, device=dev).repeat_interleave(k))
    active = torch.arange(n_sent, device=dev)  # which sentence each active row-group is
    scores = torch.zeros(n_sent, k, device=dev)
    scores[:, 1:] = NEG_INF  # all beams start identical: let only the first one expand
    hist = torch.zeros(n_sent * k, 0, dtype=torch.long, device=dev)
    last = torch.full((n_sent * k,), bos, dtype=torch.long, device=dev)
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(n_sent)]
    rank = torch.arange(2 * k, device=dev)
    for t in range(int(limits.max())):
        logp = model.step(last, state)
        n, vocab = active.numel(), logp.shape[-1]
        cand = (scores.unsqueeze(-1) + logp.view(n, k, vocab)).view(n, k * vocab)
        top_val, top_idx = cand.topk(min(2 * k, k * vocab), dim=1)
        beam_of, tok = top_idx // vocab, top_idx % vocab
        is_eos = tok == eos
        # The best k candidates that do not end the sentence continue (at most k end it, since each
        # beam contributes one EOS candidate, so at least k remain among 2k).
        sel = (rank[: top_val.shape[1]] + is_eos.long() * 2 * k).topk(k, dim=1, largest=False).indices
        next_scores, next_beam, next_tok = top_val.gather(1, sel), beam_of.gather(1, sel), tok.gather(1, sel)
        rows = (torch.arange(n, device=dev).unsqueeze(1) * k + next_beam).view(-1)
        lp = ((5.0 + t + 1) / 6.0) ** length_penalty
        # Host copies once per step for the bookkeeping of finished hypotheses.
        fin = (is_eos[:, :k] & (top_val[:, :k] > NEG_INF)).nonzero().tolist()
        at_limit = (limits[active] <= t + 1).tolist()
        if fin:
            top_val_h, beam_h, hist_h, active_h = top_val.tolist(), beam_of.tolist(), hist.tolist(), active.tolist()
            for i, j in fin:
                finished[active_h[i]].append((top_val_h[i][j] / lp, hist_h[i * k + beam_h[i][j]]))
        hist = torch.cat([hist.index_select(0, rows), next_tok.view(-1, 1)], 1)
        if any(at_limit):
            ns_h, hist_h, active_h = next_scores.tolist(), hist.tolist(), active.tolist()
            for i, lim in enumerate(at_limit):
                if lim:
                    finished[active_h[i]].extend(
                        (ns_h[i][j] / lp, hist_h[i * k + j]) for j in range(k) if ns_h[i][j] > NEG_INF)
        keep = [i for i, s in enumerate(active.tolist()) if len(finished[s]) < k and not at_limit[i]]
        if not keep:
            break
        if len(keep) < n:  # drop finished sentences from the batch
            keep_t = torch.tensor(keep, device=dev)
            rows = rows.view(n, k).index_select(0, keep_t).view(-1)
            hist = hist.view(n, k, -1).index_select(0, keep_t).view(len(keep) * k, -1)
            next_scores, next_tok = next_scores.index_select(0, keep_t), next_tok.index_select(0, keep_t)
            active = active.index_select(0, keep_t)
        state = state.reorder(rows)
        scores, last = next_scores, next_tok.view(-1)
    return [_strip(max(f, key=lambda h: h[0])[1], eos, pad) if f else [] for f in finished]


def pad_batch(seqs: Sequence[Sequence[int]], pad: int, device: torch.device | str = "cpu") -> Tensor:
    """Right-padded (B, max_len) LongTensor on ``device``. Bound for a GPU, it is built in pinned
    memory and copied asynchronously, so the training step never waits for the copy."""
    width = max(1, max(len(s) for s in seqs))
    out = torch.full((len(seqs), width), pad, dtype=torch.long, pin_memory=pins_for(device))
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return to_device(out, device)


@torch.no_grad()
def translate_ids(model: nn.Module, sources: Sequence[Sequence[int]], tok_ids: dict, cfg: DecodeConfig,
                  device: torch.device | str = "cpu", beam: int | None = None) -> list[list[int]]:
    """Decode source id lists (EOS appended here) in length-sorted batches; input order kept."""
    beam = cfg.beam if beam is None else beam
    cap = model.cfg.max_len - 1
    srcs = [list(s)[:cap] + [tok_ids["eos"]] for s in sources]
    order = sorted(range(len(srcs)), key=lambda i: len(srcs[i]))
    out: list[list[int]] = [[] for _ in srcs]
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            src = pad_batch([srcs[i] for i in idx], tok_ids["pad"], device)
            common = dict(bos=tok_ids["bos"], eos=tok_ids["eos"], pad=tok_ids["pad"],
                          max_len_a=cfg.max_len_a, max_len_b=cfg.max_len_b)
            if beam == 1:
                hyps = greedy_search(model, src, **common)
            else:
                hyps = beam_search(model, src, beam=beam, length_penalty=cfg.length_penalty, **common)
            for i, h in zip(idx, hyps):
                out[i] = h
    finally:
        model.train(was_training)
    return out


def translate_texts(model: nn.Module, tokenizer, texts: Sequence[str], cfg: DecodeConfig,
                    device: torch.device | str = "cpu", beam: int | None = None) -> list[str]:
    """Translate raw sentences; empty (or whitespace-only) lines come back empty."""
    from apps.translation.data import normalize

    texts = [normalize(t) for t in texts]
    nonempty = [i for i, t in enumerate(texts) if t]
    ids = tokenizer.encode([texts[i] for i in nonempty])
    tok_ids = {"pad": tokenizer.pad_id, "bos": tokenizer.bos_id, "eos": tokenizer.eos_id}
    hyps = tokenizer.decode(translate_ids(model, ids, tok_ids, cfg, device, beam))
    out = [""] * len(texts)
    for i, h in zip(nonempty, hyps):
        out[i] = h
    return out
