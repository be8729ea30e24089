"""Translate stdin to stdout with a trained run: ``python -m apps.translation.translate --run DIR``.

One source sentence per input line, one translation per output line (empty lines stay empty).
Input is read in chunks of ``--chunk`` lines, so a long stream starts producing output early.
"""

from __future__ import annotations

import argparse
import sys
from typing import BinaryIO, Iterable, Iterator, Sequence, TextIO

from apps.translation.config import DecodeConfig
from apps.translation.decode import translate_texts
from apps.translation.runtime import load_trained
from common.errors import UserError, cli


def utf8_lines(stream: BinaryIO) -> Iterator[str]:
    """Lines of a byte stream decoded as strict UTF-8, without their line terminators."""
    for number, raw in enumerate(stream, 1):
        try:
            yield raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise UserError(f"standard input line {number} is not UTF-8 text; re-encode the input as UTF-8") from None


def translate_stream(run: str, inp: Iterable[str], out: TextIO, beam: int | None = None,
                     length_penalty: float | None = None, chunk: int = 256) -> int:
    """Translate every line of ``inp`` into ``out``; returns the number of lines."""
    loaded = load_trained(run)
    d = loaded.cfg.decode
    cfg = DecodeConfig(beam=d.beam if beam is None else beam,
                       length_penalty=d.length_penalty if length_penalty is None else length_penalty,
                       max_len_a=d.max_len_a, max_len_b=d.max_len_b, batch_size=d.batch_size)
    count, buf = 0, []

    def flush() -> None:
        for line in translate_texts(loaded.model, loaded.tokenizer, buf, cfg):
            out.write(line + "\n")
        out.flush()
        buf.clear()

    for line in inp:
        buf.append(line.rstrip("\n"))
        count += 1
        if len(buf) >= chunk:
            flush()
    if buf:
        flush()
    return count


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m apps.translation.translate", description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="run directory (the out= of a training run)")
    p.add_argument("--beam", type=int, default=None, help="beam width (default: the run's decode.beam)")
    p.add_argument("--length-penalty", type=float, default=None, help="GNMT length-penalty exponent")
    p.add_argument("--chunk", type=int, default=256, help="lines translated together")
    args = p.parse_args(list(argv))
    if args.beam is not None and args.beam < 1:
        raise UserError(f"--beam must be >= 1 (got {args.beam})")
    if args.chunk < 1:
        raise UserError(f"--chunk must be >= 1 (got {args.chunk})")
    # Read bytes as strict UTF-8 whatever the locale says (exact line numbers in errors), write UTF-8.
    sys.stdout.reconfigure(encoding="utf-8")
    translate_stream(args.run, utf8_lines(sys.stdin.buffer), sys.stdout, args.beam, args.length_penalty, args.chunk)
    return 0


if __name__ == "__main__":
    cli(main)
