"""Score a trained run with sacreBLEU: ``python -m apps.translation.evaluate --run DIR [--split test]``.

Writes ``DIR/eval.json`` (docs/run-directory.md: app, step, split, num_sentences, bleu, chrf, their sacreBLEU
signatures, decoding settings) — ``eval_<split>.json`` too, so scoring several splits keeps each
— and the detokenised hypotheses beside it (``hyp.<split>.<tgt_lang>``, one line per reference
line), so the score can be re-checked with the ``sacrebleu`` command line::

    sacrebleu REF_FILE -i DIR/hyp.test.en -m bleu chrf

BLEU is cased, on detokenised text, with sacreBLEU's default 13a tokenisation; chrF with its
defaults (character 6-grams, β = 2). On the embedded English→German corpus the word-by-word
dictionary baseline is scored on the same sentences and reported beside the model. Under
``accelerate launch`` each process decodes a shard and the hypotheses are gathered in input
order, so the result equals a single-process evaluation.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Sequence

import torch

from apps.translation.config import DecodeConfig, canonical_split
from apps.translation.data import load_split
from apps.translation.decode import translate_texts
from apps.translation.runtime import APP, load_trained
from common.errors import UserError, cli
from common.rundir import RunDir, atomic_write_text


def score(hyps: Sequence[str], refs: Sequence[str]) -> dict:
    """Corpus BLEU and chrF with their signatures (sacreBLEU's defaults)."""
    from sacrebleu.metrics import BLEU, CHRF

    bleu, chrf = BLEU(), CHRF()
    b = bleu.corpus_score(list(hyps), [list(refs)])
    c = chrf.corpus_score(list(hyps), [list(refs)])
    return {"bleu": b.score, "chrf": c.score, "bleu_signature": str(bleu.get_signature()),
            "chrf_signature": str(chrf.get_signature())}


def evaluate(run_path: str, split: str = "test", beam: int | None = None, length_penalty: float | None = None,
             batch_size: int | None = None, step: int | None = None, num: int = 0) -> dict:
    """Decode ``split`` with the run's latest weights, score it, write eval.json + hypotheses —
    holding the run's lock: refused while a training or another evaluation has it."""
    with RunDir.open(run_path, APP, write=True):
        return _evaluate(run_path, split, beam, length_penalty, batch_size, step, num)


def _evaluate(run_path: str, split: str, beam: int | None, length_penalty: float | None, batch_size: int | None,
              step: int | None, num: int) -> dict:
    accelerator = None
    if _launched():
        from common.training import make_accelerator

        accelerator = make_accelerator("no", cpu=True if not torch.cuda.is_available() else None)
    device = accelerator.device if accelerator is not None else torch.device("cpu")
    loaded = load_trained(run_path, device, step=step)
    cfg = loaded.cfg
    decode = DecodeConfig(
        beam=cfg.decode.beam if beam is None else beam,
        length_penalty=cfg.decode.length_penalty if length_penalty is None else length_penalty,
        max_len_a=cfg.decode.max_len_a, max_len_b=cfg.decode.max_len_b,
        batch_size=cfg.decode.batch_size if batch_size is None else batch_size,
    )
    split = canonical_split(split)
    data = load_split(cfg.data, split)
    pairs = data.pairs[:num] if num > 0 else data.pairs
    if not pairs:
        raise UserError(f"the {split} split of {data.origin} is empty; nothing to evaluate")
    sources, refs = [s for s, _ in pairs], [t for _, t in pairs]
    start = time.time()
    if accelerator is None or accelerator.num_processes == 1:
        hyps = translate_texts(loaded.model, loaded.tokenizer, sources, decode, device)
    else:
        from accelerate.utils import gather_object

        rank, world = accelerator.process_index, accelerator.num_processes
        idx = list(range(rank, len(sources), world))
        mine = translate_texts(loaded.model, loaded.tokenizer, [sources[i] for i in idx], decode, device)
        hyps = [h for _, h in sorted(gather_object(list(zip(idx, mine))))]
    seconds = time.time() - start
    result = {"app": APP, "step": loaded.step, "split": split, "num_sentences": len(hyps), **score(hyps, refs),
              "decoding": {"beam": decode.beam, "length_penalty": decode.length_penalty,
                           "max_len_a": decode.max_len_a, "max_len_b": decode.max_len_b},
              "src_lang": cfg.data.src_lang, "tgt_lang": cfg.data.tgt_lang, "data": data.origin,
              "reference_file": data.target_file, "decode_seconds": seconds,
              "hypotheses": f"hyp.{split}.{cfg.data.tgt_lang}"}
    if cfg.data.source == "embedded" and cfg.data.src_lang == "en":
        # The word-by-word dictionary baseline on the same sentences, scored the same way.
        from apps.translation.grammar import dictionary_baseline

        base = score([dictionary_baseline(s) for s in sources], refs)
        result["dictionary_baseline"] = {"bleu": base["bleu"], "chrf": base["chrf"]}
    if accelerator is None or accelerator.is_main_process:
        out = Path(run_path)
        atomic_write_text(out / result["hypotheses"], "".join(h + "\n" for h in hyps))
        text = json.dumps(result, indent=2) + "\n"
        atomic_write_text(out / f"eval_{split}.json", text)
        atomic_write_text(out / "eval.json", text)
    return result


def _launched() -> bool:
    """True under ``accelerate launch`` with several processes (it sets WORLD_SIZE)."""
    import os

    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m apps.translation.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="run directory (the out= of a training run)")
    p.add_argument("--split", default="test", help="train, valid (val) or test (test_2016_flickr); default test")
    p.add_argument("--beam", type=int, default=None, help="beam width (default: the run's decode.beam)")
    p.add_argument("--length-penalty", type=float, default=None, help="GNMT length-penalty exponent")
    p.add_argument("--batch-size", type=int, default=None, help="sentences decoded together")
    p.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest)")
    p.add_argument("--num", type=int, default=0, help="score only the first N sentences (0 = all)")
    args = p.parse_args(list(argv))
    if args.beam is not None and args.beam < 1:
        raise UserError(f"--beam must be >= 1 (got {args.beam})")
    if args.batch_size is not None and args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1 (got {args.batch_size})")
    if args.length_penalty is not None and args.length_penalty < 0:
        raise UserError(f"--length-penalty must be >= 0 (got {args.length_penalty})")
    r = evaluate(args.run, args.split, args.beam, args.length_penalty, args.batch_size, args.step, args.num)
    if int(os.environ.get("RANK", "0")) != 0:  # under accelerate launch: print the summary once
        return 0
    print(f"{r['split']}: BLEU {r['bleu']:.2f}  chrF {r['chrf']:.2f}  ({r['num_sentences']} sentences, "
          f"beam {r['decoding']['beam']}, step {r['step']})\n{r['bleu_signature']}\n{r['chrf_signature']}")
    if "dictionary_baseline" in r:
        b = r["dictionary_baseline"]
        print(f"dictionary baseline: BLEU {b['bleu']:.2f}  chrF {b['chrf']:.2f}")
    return 0


if __name__ == "__main__":
    cli(main)
