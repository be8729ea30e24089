"""Translation throughput, side by side in one run (docs/conventions.md: ratios, since machines are noisy).

1. Training tokens/s (source + target, forward + backward + AdamW step) of our Transformer with
   each FFN activation against the plain ``torch.nn.Transformer`` of the same size on the same
   batches. Measurements are interleaved round by round and the median taken, so load from other
   processes hits every model alike. Target: ours / torch ≥ 0.9.
2. Decoding at batch 64: greedy vs beam search (width 5), seconds per sentence. Target: beam no
   slower per sentence than greedy × beam width.

    python bench/translation_throughput.py                      # untrained models, synthetic batches
    python bench/translation_throughput.py --run runs/translation/m30k-leaky --decode-only  # a trained model

Prints a table; asserts nothing (tests assert behaviour, benchmarks report figures).
``bench/gpu_check.py`` reuses :func:`variants`, :func:`synthetic_batch` and :func:`train_speed`
(there on the GPU, in float32 and under bf16 autocast).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apps.translation.config import ModelConfig  # noqa: E402
from apps.translation.decode import beam_search, greedy_search, pad_batch  # noqa: E402
from apps.translation.model import build_model, count_parameters, init_model  # noqa: E402

PAD, BOS, EOS = 0, 2, 3


def synthetic_batch(n: int, vocab: int, lo: int, hi: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` pairs with Multi30k-like lengths (uniform in [lo, hi] tokens), padded like training."""
    g = torch.Generator().manual_seed(seed)
    src, tgt = [], []
    for _ in range(n):
        ls, lt = (int(torch.randint(lo, hi + 1, (1,), generator=g)) for _ in range(2))
        src.append(torch.randint(4, vocab, (ls,), generator=g).tolist() + [EOS])
        tgt.append(torch.randint(4, vocab, (lt,), generator=g).tolist())
    return (pad_batch(src, PAD), pad_batch([[BOS] + t for t in tgt], PAD), pad_batch([t + [EOS] for t in tgt], PAD))


def variants(d_model: int, heads: int, layers: int, d_ff: int) -> dict[str, ModelConfig]:
    """The models compared: ``torch.nn.Transformer`` (the baseline) and ours with each FFN activation."""
    base = dict(d_model=d_model, heads=heads, enc_layers=layers, dec_layers=layers, d_ff=d_ff, dropout=0.1)
    return {
        "torch.nn.Transformer (relu)": ModelConfig(impl="torch", **base),
        "ours relu": ModelConfig(activation="relu", **base),
        "ours leaky_relu 0.2": ModelConfig(activation="leaky_relu", act_params={"alpha": 0.2}, **base),
        "ours fused_leaky_relu 0.2": ModelConfig(activation="fused_leaky_relu", act_params={"alpha": 0.2}, **base),
    }


def train_speed(models: dict, batch, rounds: int, steps: int, device: torch.device | str = "cpu",
                bf16: bool = False) -> dict[str, float]:
    """Median tokens/s of each model, timing ``steps`` optimizer steps per round, interleaved.

    Models and batch are moved to ``device``; ``bf16`` runs the forward passes under bf16 autocast
    (the loss in float32). On a GPU each round ends with a synchronize, so a round's time is the
    device's, not the launch queue's."""
    device = torch.device(device)
    src, tgt_in, tgt_out = (t.to(device) for t in batch)
    tokens = int((src != PAD).sum() + (tgt_out != PAD).sum())
    for m in models.values():
        m.to(device)
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}
    times: dict[str, list[float]] = {k: [] for k in models}
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step(name: str) -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            logits = models[name](src, tgt_in)
        loss = F.cross_entropy(logits.float().flatten(0, 1), tgt_out.flatten(), ignore_index=PAD,
                               label_smoothing=0.1)
        opts[name].zero_grad(set_to_none=True)
        loss.backward()
        opts[name].step()

    for name in models:  # warm-up: allocator, one-time kernel selection
        models[name].train()
        step(name)
    sync()
    for r in range(rounds):
        order = list(models) if r % 2 == 0 else list(reversed(models))
        for name in order:
            t = time.perf_counter()
            for _ in range(steps):
                step(name)
            sync()
            times[name].append(steps * tokens / (time.perf_counter() - t))
    return {k: statistics.median(v) for k, v in times.items()}


def decode_speed(model, src: torch.Tensor, beam: int, rounds: int, ids=(BOS, EOS, PAD)) -> dict[str, float]:
    """Median seconds per sentence of greedy and of beam search on the same batch."""
    model.eval()
    kw = dict(bos=ids[0], eos=ids[1], pad=ids[2], max_len_a=1.5, max_len_b=10)
    out: dict[str, list[float]] = {"greedy": [], "beam": []}
    for r in range(rounds):
        for name in (("greedy", "beam") if r % 2 == 0 else ("beam", "greedy")):
            t = time.perf_counter()
            if name == "greedy":
                greedy_search(model, src, **kw)
            else:
                beam_search(model, src, beam=beam, length_penalty=1.0, **kw)
            out[name].append((time.perf_counter() - t) / src.shape[0])
    return {k: statistics.median(v) for k, v in out.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", help="a trained translation run: decode its own model on its test split")
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--d-ff", type=int, default=512)
    p.add_argument("--vocab", type=int, default=5000)
    p.add_argument("--batch", type=int, default=128, help="sentence pairs per training batch")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=3, help="optimizer steps timed per round")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--decode-only", action="store_true", help="skip the training-throughput table")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    configs = variants(args.d_model, args.heads, args.layers, args.d_ff)
    models = {k: init_model(build_model(c, args.vocab, PAD), c) for k, c in configs.items()}
    if not args.decode_only:
        batch = synthetic_batch(args.batch, args.vocab, 8, 24, seed=1)
        tokens = int((batch[0] != PAD).sum() + (batch[2] != PAD).sum())
        speeds = train_speed(models, batch, args.rounds, args.steps)
        ref = speeds["torch.nn.Transformer (relu)"]
        print(f"# training throughput — {args.batch} pairs ({tokens} tokens) per step, d={args.d_model}, "
              f"{args.layers}+{args.layers} layers, FFN {args.d_ff}, vocab {args.vocab}, {args.threads} thread(s), "
              f"median of {args.rounds} interleaved rounds × {args.steps} steps\n")
        print("| model | parameters | tokens/s | ratio to torch.nn.Transformer |")
        print("| --- | ---: | ---: | ---: |")
        for name, tps in speeds.items():
            print(f"| {name} | {count_parameters(models[name]) / 1e6:.2f}M | {tps:,.0f} | {tps / ref:.3f} |")

    if args.run:
        from apps.translation.data import load_split
        from apps.translation.runtime import load_trained

        loaded = load_trained(args.run)
        model, tok = loaded.model, loaded.tokenizer
        sources = [s for s, _ in load_split(loaded.cfg.data, "test").pairs[:64]]
        src = pad_batch([x + [tok.eos_id] for x in tok.encode(sources)], tok.pad_id)
        ids = (tok.bos_id, tok.eos_id, tok.pad_id)
        what = f"trained run {args.run} (step {loaded.step}), its first 64 test sentences"
    else:
        model = models["ours leaky_relu 0.2"]
        src = synthetic_batch(64, args.vocab, 8, 24, seed=2)[0]
        ids = (BOS, EOS, PAD)
        what = "untrained model (hypotheses run to the length limit: the worst case), 64 synthetic sentences"
    dec = decode_speed(model, src, args.beam, max(3, args.rounds), ids)
    print(f"\n# decoding at batch 64 — {what}\n")
    print("| decoder | ms / sentence | × greedy |")
    print("| --- | ---: | ---: |")
    print(f"| greedy | {dec['greedy'] * 1e3:.2f} | 1.00 |")
    print(f"| beam {args.beam} | {dec['beam'] * 1e3:.2f} | {dec['beam'] / dec['greedy']:.2f} "
          f"(target ≤ {args.beam}) |")


if __name__ == "__main__":
    main()
