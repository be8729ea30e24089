"""``python -m apps.translation.grammar --out DIR``: write the corpus, report the baseline.

Writes ``DIR/{train,val,test_2016_flickr}.{en,de}`` (the Multi30k raw layout, so
``LEAKYLAB_MULTI30K_DIR=DIR`` makes the translation app read it like the real data), then prints
the generation time, the sizes, the dictionary baseline's BLEU on the test split and examples.
Without ``--out`` it only prints.
"""

from __future__ import annotations

import argparse
import time
from typing import Sequence

from common.errors import UserError, cli


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m apps.translation.grammar", description=__doc__.splitlines()[0])
    p.add_argument("--out", help="folder to write the corpus to (Multi30k raw layout)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train", type=int, default=20000)
    p.add_argument("--valid", type=int, default=1000)
    p.add_argument("--test", type=int, default=1000)
    p.add_argument("--gzip", action="store_true", help="write .gz files like the Multi30k distribution")
    p.add_argument("--examples", type=int, default=5, help="example pairs to print")
    args = p.parse_args(list(argv))
    for name in ("train", "valid", "test", "examples"):
        if getattr(args, name) < 0:
            raise UserError(f"--{name} must be >= 0 (got {getattr(args, name)})")
    if args.test == 0 and args.examples:
        raise UserError("--test 0 leaves nothing to score the baseline on; give --test >= 1")

    from apps.translation.grammar import generate_corpus, score_baseline, write_corpus

    start = time.perf_counter()
    corpus = generate_corpus(args.seed, args.train, args.valid, args.test)
    seconds = time.perf_counter() - start
    sizes = ", ".join(f"{k} {len(v)}" for k, v in corpus.items())
    print(f"generated seed {args.seed}: {sizes} pairs in {seconds:.2f} s")
    if args.out:
        try:
            paths = write_corpus(args.out, corpus, compress=args.gzip)
        except OSError as exc:
            raise UserError(f"cannot write the corpus to {args.out}: {exc.strerror}; choose another --out") from None
        print(f"wrote {len(paths)} files to {args.out}")
    if corpus["test"]:
        print(f"dictionary baseline on test: {score_baseline(corpus['test'])}")
    for en, de in corpus["test"][: args.examples]:
        print(f"  {en}\n  -> {de}")
    return 0


if __name__ == "__main__":
    cli(main)
