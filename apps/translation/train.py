"""Train the translation model.

    accelerate launch -m apps.translation.train --config configs/translation/embedded.yaml [key=value ...]
    python -m apps.translation.train --config configs/translation/multi30k.yaml out=runs/m30k seed=1

One explicit loop, top to bottom: data → tokenizer → model → optimizer → resume → steps (what every
app's loop does alike — resume, the after-step cadence, logging, checkpoints — is common.loop).
The batch of step ``s`` is a pure function of (seed, s) (apps.translation.batching), the learning
rate a pure function of ``s`` (apps.translation.schedule), and every other random state lives in
the checkpoint, so a killed run re-run with the same command continues exactly where it stopped.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from apps.translation.batching import TokenBatcher, shard
from apps.translation.config import OptimConfig, TranslationConfig
from apps.translation.data import load_split
from apps.translation.decode import pad_batch, translate_ids
from apps.translation.model import build_model, count_parameters, init_model, probe_parts
from apps.translation.runtime import APP
from apps.translation.schedule import get_lr
from apps.translation.tokenizer import BPETokenizer, train_bpe
from common.config import config_to_dict
from common.errors import UserError, cli
from common.loop import TrainLoop, start_accelerator, train_main
from common.probes import attach_probes
from common.remedies import Remedies, param_groups
from common.rundir import RunDir


def encode_pairs(tokenizer: BPETokenizer, pairs, max_len: int) -> tuple[list, list, int]:
    """Source ids + EOS and target ids; pairs longer than the model allows are dropped (counted)."""
    src = tokenizer.encode([s for s, _ in pairs])
    tgt = tokenizer.encode([t for _, t in pairs])
    keep_s, keep_t, dropped = [], [], 0
    for s, t in zip(src, tgt):
        if len(s) + 1 > max_len or len(t) + 1 > max_len:
            dropped += 1
            continue
        keep_s.append(s + [tokenizer.eos_id])
        keep_t.append(t)
    return keep_s, keep_t, dropped


def make_batch(src_ids, tgt_ids, idx, tokenizer: BPETokenizer, device):
    """(src, decoder input = BOS + target, decoder output = target + EOS) padded tensors on
    ``device``, copied there without a host sync (:func:`pad_batch`)."""
    src = pad_batch([src_ids[i] for i in idx], tokenizer.pad_id, device)
    tgt_in = pad_batch([[tokenizer.bos_id] + tgt_ids[i] for i in idx], tokenizer.pad_id, device)
    tgt_out = pad_batch([tgt_ids[i] + [tokenizer.eos_id] for i in idx], tokenizer.pad_id, device)
    return src, tgt_in, tgt_out


def prepare_tokenizer(cfg: TranslationConfig, run: RunDir, train_pairs, accelerator) -> BPETokenizer:
    """The run's tokenizer: trained once on the training split by the main process, then loaded
    by everyone (so a resumed run keeps its vocabulary)."""
    path = run.path / "tokenizer.json"
    if not path.exists() and accelerator.is_main_process:
        texts = [s for s, _ in train_pairs] + [t for _, t in train_pairs]
        train_bpe(texts, cfg.tokenizer.vocab_size, cfg.tokenizer.min_frequency).save(run.path)
    accelerator.wait_for_everyone()
    return BPETokenizer.load(run.path)


@torch.no_grad()
def validate(model, cfg: TranslationConfig, tokenizer: BPETokenizer, valid, accelerator) -> dict:
    """Validation loss (teacher forcing, all pairs) and greedy BLEU/chrF on the first
    ``train.eval_sentences`` pairs; both computed on shards and gathered over processes."""
    import sacrebleu
    from accelerate.utils import gather_object

    raw = accelerator.unwrap_model(model)
    raw.eval()
    rank, world, dev = accelerator.process_index, accelerator.num_processes, accelerator.device
    src_ids, tgt_ids = valid
    tot = torch.zeros(2, dtype=torch.float64, device=dev)
    mine = list(range(rank, len(src_ids), world))
    for start in range(0, len(mine), 64):
        idx = mine[start : start + 64]
        src, tgt_in, tgt_out = make_batch(src_ids, tgt_ids, idx, tokenizer, dev)
        with accelerator.autocast():
            logits = raw(src, tgt_in)
        tot[0] += F.cross_entropy(logits.float().flatten(0, 1), tgt_out.flatten(), ignore_index=tokenizer.pad_id,
                                  reduction="sum")
        tot[1] += (tgt_out != tokenizer.pad_id).sum()
    tot = accelerator.reduce(tot, "sum") if world > 1 else tot
    n = len(src_ids) if cfg.train.eval_sentences == 0 else min(cfg.train.eval_sentences, len(src_ids))
    idx = list(range(rank, n, world))
    tok_ids = {"pad": tokenizer.pad_id, "bos": tokenizer.bos_id, "eos": tokenizer.eos_id}
    hyps = translate_ids(raw, [src_ids[i][:-1] for i in idx], tok_ids, cfg.decode, dev, beam=1)
    pairs = list(zip(idx, tokenizer.decode(hyps)))
    if world > 1:
        pairs = sorted(gather_object(pairs))  # every process's shard, back in sentence order
    refs = tokenizer.decode([tgt_ids[i] for i in range(n)])
    texts = [h for _, h in pairs]
    raw.train()
    loss = (tot[0] / tot[1].clamp(min=1)).item()
    return {"valid_loss": loss, "valid_ppl": math.exp(min(loss, 50.0)),
            "valid_bleu": sacrebleu.corpus_bleu(texts, [refs]).score,
            "valid_chrf": sacrebleu.corpus_chrf(texts, [refs]).score}


def local_batch(global_idx: list[int], src_ids, tgt_ids, tokenizer: BPETokenizer, accelerator) -> tuple:
    """This process's share of a global batch as padded tensors (src, decoder input, decoder
    output) on the device and the loss scale that makes the DDP-averaged update equal one
    process's update of the whole batch (a Python float, computed from the host's own lengths:
    no device value is read)."""
    world = accelerator.num_processes
    mine = shard(global_idx, accelerator.process_index, world)
    weight = 1.0
    if len(mine) == 0:  # tiny batch on many processes: run one pair with zero weight
        mine, weight = global_idx[:1], 0.0
    src, tgt_in, tgt_out = make_batch(src_ids, tgt_ids, mine, tokenizer, accelerator.device)
    # Normalise by the global target-token count (known to every process without a collective),
    # times world size because DDP averages gradients.
    global_tokens = sum(len(tgt_ids[i]) + 1 for i in global_idx)
    return src, tgt_in, tgt_out, weight * world / global_tokens


def train_step(step: int, batch: tuple, model, optimizer, accelerator, cfg: OptimConfig, pad_id: int,
               loop: TrainLoop) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step on ``batch`` (from :func:`local_batch`): teacher-forced label-smoothed
    cross-entropy, gradient clipping, the update; the loss and gradient norm also go into the
    divergence flag, without a host sync. Returns both (the loss scaled as it was optimised),
    still on the device: the caller reads them at its log cadence."""
    src, tgt_in, tgt_out, scale = batch
    loop.probes.begin_step(step)
    loop.remedies.before_step(step)
    with accelerator.autocast():
        logits = model(src, tgt_in)
    loss_sum = F.cross_entropy(logits.float().flatten(0, 1), tgt_out.flatten(), ignore_index=pad_id,
                               label_smoothing=cfg.label_smoothing, reduction="sum")
    loss = loss_sum * scale
    optimizer.zero_grad(set_to_none=True)
    accelerator.backward(loss)
    loop.probes.end_step()
    grad_norm = accelerator.clip_grad_norm_(model.parameters(), cfg.clip_norm) \
        if cfg.clip_norm > 0 else torch.zeros((), device=accelerator.device)
    optimizer.step()
    # The gradient norm is identical on all processes after the all-reduce, so every process
    # stops at the same step.
    loop.guard.update(loss.detach(), torch.as_tensor(grad_norm, device=accelerator.device))
    return loss.detach(), grad_norm


def train(cfg: TranslationConfig, allow_config_change: bool = False) -> RunDir:
    accelerator = start_accelerator(cfg.train, cfg.seed)
    world, dev = accelerator.num_processes, accelerator.device

    # -- data and tokenizer ---------------------------------------------------------------------
    train_split = load_split(cfg.data, "train")
    valid_split = load_split(cfg.data, "valid")
    if not train_split.pairs:
        raise UserError(f"the training split of {train_split.origin} has no usable pairs after filtering "
                        f"({train_split.stats()})")
    run = RunDir.create_or_resume(cfg.out, APP, config_to_dict(cfg), accelerator, allow_config_change)
    tokenizer = prepare_tokenizer(cfg, run, train_split.pairs, accelerator)
    src_ids, tgt_ids, too_long_tok = encode_pairs(tokenizer, train_split.pairs, cfg.model.max_len)
    valid = encode_pairs(tokenizer, [p for p in valid_split.pairs if p[0] and p[1]], cfg.model.max_len)[:2]
    batcher = TokenBatcher([len(s) for s in src_ids], [len(t) + 1 for t in tgt_ids], cfg.train.max_tokens, cfg.seed)

    # -- model, optimizer, resume -----------------------------------------------------------------
    model = build_model(cfg.model, tokenizer.vocab_size, tokenizer.pad_id)
    init_model(model, cfg.model)
    optimizer = torch.optim.AdamW(
        param_groups(model, cfg.remedies.weight_decay, decay_biases=cfg.remedies.decay_biases),
        lr=cfg.optim.lr, betas=tuple(cfg.optim.betas))
    parts = probe_parts(model)
    probes = attach_probes(parts, cfg.probes)
    remedies = Remedies(cfg.remedies, parts, {"optimizer": optimizer}, probes, seed=cfg.seed)  # before resume
    loop = TrainLoop(cfg.train, cfg.steps, run, accelerator, probes, remedies, window=("loss",))
    loop.resume({"model": model}, {"optimizer": optimizer})
    model, optimizer = accelerator.prepare(model, optimizer)

    if accelerator.is_main_process:
        print(f"translation: {train_split.origin}: train {train_split.stats()} (+{too_long_tok} over "
              f"model.max_len tokens), valid {len(valid[0])} pairs; vocab {tokenizer.vocab_size}; "
              f"{count_parameters(model) / 1e6:.2f}M parameters ({cfg.model.impl}, {cfg.model.activation}); "
              f"{world} process(es) on {dev}; steps {loop.start} → {cfg.steps}", flush=True)
    if loop.finished:
        return run

    model.train()
    loop.begin()
    for step in range(loop.start, cfg.steps):
        epoch, global_idx = batcher.batch(step)
        lr = get_lr(step, cfg.optim, cfg.steps)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        batch = local_batch(global_idx, src_ids, tgt_ids, tokenizer, accelerator)
        loss, grad_norm = train_step(step, batch, model, optimizer, accelerator, cfg.optim, tokenizer.pad_id, loop)
        loop.window.add(loss)
        tokens = sum(len(tgt_ids[i]) + 1 + len(src_ids[i]) for i in global_idx)
        done = loop.after_step(step, work=tokens)

        if loop.log_due(done):
            mean = loop.window.read()["loss"]
            # the log step: reading the last gradient norm is one of its host syncs
            loop.log({"step": done, "epoch": epoch, "loss": mean, "lr": lr, "grad_norm": float(grad_norm),
                      "tokens_per_s": loop.window.per_second()}, loss=f"{mean:.3f}", lr=f"{lr:.2e}")
        if done % cfg.train.eval_every == 0 or done == cfg.steps:
            rec = validate(model, cfg, tokenizer, valid, accelerator)
            run.log_metrics({"step": done, **rec})
            loop.tracker.log(rec, done)
            if accelerator.is_main_process:
                loop.bar.write(f"step {done}: valid loss {rec['valid_loss']:.3f}, greedy BLEU {rec['valid_bleu']:.2f}")
        if loop.checkpoint_due(done):
            loop.checkpoint(done, extra={"epoch": epoch})
    loop.end()
    return run


def main(argv: Sequence[str]) -> int:
    return train_main(TranslationConfig, train, argv, app=APP, description="Train the translation model.")


if __name__ == "__main__":
    cli(main)
