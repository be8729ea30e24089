"""One command for a GPU machine: every GPU figure the project's targets ask for, in one report.

    python bench/gpu_check.py                          # on a CUDA GPU → bench/results/gpu-<device>.md
    python bench/gpu_check.py --parts kernel,gan       # a subset of the parts, same report layout
    python bench/gpu_check.py --smoke --out /tmp/gc    # every part in seconds on the CPU (the test runs this)

Parts, each timed and each in its own section of the report:

1. ``kernel`` — the fused LeakyReLU (``common.kernels``, forced onto Triton) vs eager PyTorch vs
   ``torch.compile`` vs a device copy, forward and forward+backward, fp32 and bf16, three sizes,
   through ``bench/kernel.py``; targets: ours >= 90 % of copy bandwidth, >= 2x eager, >= 1.1x compile.
2. ``gan`` — the DCGAN training step, ours vs pytorch/examples' loop, fp32 and bf16, through
   ``bench/gan_step.py``; target: ours >= 0.95x the reference.
3. ``translation`` — training tokens/s of our Transformer vs ``torch.nn.Transformer``, through
   ``bench/translation_throughput.py``.
4. ``apps`` — a few hundred steps of each app's train command on real data (KMNIST from
   ``$LEAKYLAB_KMNIST_DIR``, Multi30k from ``$LEAKYLAB_MULTI30K_DIR``): finished or not, steps/s;
   a cell without its data is skipped with a line saying so.

A part that fails is recorded in the report (the error and the end of its traceback) and the next
part runs; the report is rewritten after every part, so a run cut short keeps what it measured.
Exit status: 0 when no part failed (targets missed are figures, not failures), 1 when one did,
2 for a bad option or no GPU without ``--smoke``. Sized to finish within about 8 minutes on one
H200-class GPU (its sizes and step counts are the constants of the parts).

``--smoke`` runs the same code on the CPU with tiny sizes and a few steps, the kernel under the
Triton interpreter (``TRITON_INTERPRET=1``) and without torch.compile; its timings are not
figures. It never writes into ``bench/results`` (by default it writes to a fresh temporary folder).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `python bench/gpu_check.py` from a checkout that is not installed

import torch  # noqa: E402

from bench.gpu_cells import part_apps  # noqa: E402
from bench.gpu_parts import part_gan, part_kernel, part_translation  # noqa: E402
from bench.gpu_report import Context, Section, Skipped, table, write_atomic  # noqa: E402
from common.errors import UserError, cli  # noqa: E402  (imports nothing of common.kernels)

RESULTS = ROOT / "bench" / "results"


@dataclass
class Part:
    title: str
    run: Callable[[Context], Section]


PARTS: dict[str, Part] = {
    "kernel": Part("Fused LeakyReLU kernel", part_kernel),
    "gan": Part("DCGAN training step", part_gan),
    "translation": Part("Translation training throughput", part_translation),
    "apps": Part("Real-data cells of each app", part_apps),
}


@dataclass
class Outcome:
    status: str = "not run"  # "ok", "failed", "skipped", "not run"
    seconds: float = 0.0
    section: Section | None = None
    error: list[str] | None = None  # a failed part's error and traceback tail


def parse(argv: Sequence[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help=f"results folder (default {RESULTS.relative_to(ROOT)}; "
                                  "with --smoke a fresh temporary folder)")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma list of {', '.join(PARTS)} (default: all)")
    ap.add_argument("--smoke", action="store_true", help="every part in seconds on the CPU; timings are not figures")
    args = ap.parse_args(argv)
    names = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in names if p not in PARTS]
    if unknown or not names:
        raise UserError(f"unknown part {', '.join(map(repr, unknown)) or '(none given)'} in --parts; "
                        f"choose from {', '.join(PARTS)}")
    args.parts = [p for p in PARTS if p in names]  # the report's order, each once
    if not args.smoke and not torch.cuda.is_available():
        raise UserError("no CUDA GPU here, so there are no GPU figures to measure; run it on the GPU machine, "
                        "or pass --smoke for the CPU dry run")
    if args.smoke and args.out and Path(args.out).resolve() == RESULTS.resolve():
        raise UserError(f"--smoke does not write into {RESULTS.relative_to(ROOT)} (only GPU figures go there); "
                        "pass another --out or none")
    return args


def environment(smoke: bool) -> dict[str, str]:
    """The device and the versions the figures depend on."""
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:  # the kernel part then fails and says why; the others still run
        triton_version = "not installed"
    if smoke:
        cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                    if line.startswith("model name")), platform.processor() or platform.machine())
        device = f"CPU smoke run ({cpu}, {torch.get_num_threads()} thread(s)): timings are not figures"
    else:
        p = torch.cuda.get_device_properties(0)
        device = f"{p.name} ({p.multi_processor_count} SMs, {p.total_memory / 2**30:.0f} GiB)"
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    if commit != "unknown" and _git("status", "--porcelain", "--untracked-files=no"):
        commit += " (with uncommitted changes)"
    return {"device": device, "torch": torch.__version__, "triton": triton_version,
            "CUDA": str(torch.version.cuda), "python": platform.python_version(), "commit": commit}


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _git(*args: str) -> str:
    try:
        res = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
        return res.stdout.strip() if res.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def render(env: dict[str, str], started: datetime.datetime, command: str, outcomes: dict[str, Outcome],
           total_s: float) -> str:
    """The whole report: header, summary of the parts, then each part's section."""
    lines = [f"# GPU check — {env['device'].split(' (')[0]}", "",
             f"Generated {started.isoformat(timespec='seconds')} by `{command}` in {total_s:.0f} s.", ""]
    lines += table(["", ""], [["date", started.date().isoformat()], *([k, v] for k, v in env.items()),
                              ["command", f"`{command}`"]])
    rows = []
    for i, (name, o) in enumerate(outcomes.items(), 1):
        met = o.section.targets if o.section else []
        rows.append([f"{i}. {name} — {PARTS[name].title}", o.status, f"{o.seconds:.1f}" if o.status != "not run" else "–",
                     f"{sum(met)}/{len(met)}" if met else "–"])
    lines += ["", "## Summary", ""] + table(["part", "status", "wall s", "targets met"], rows, right_from=2)
    for i, (name, o) in enumerate(outcomes.items(), 1):
        lines += ["", f"## {i}. {PARTS[name].title} (`{name}`)", "",
                  f"Status: {o.status}" + (f", {o.seconds:.1f} s." if o.status != "not run" else
                                           " (the command ended before this part).")]
        if o.error:
            lines += ["", "```", *o.error, "```"]
        if o.section:
            if o.section.failed_cells:
                lines += ["", "Failed: " + "; ".join(o.section.failed_cells) + "."]
            lines += [""] + o.section.lines
    return "\n".join(lines) + "\n"


def run_part(name: str, ctx: Context) -> Outcome:
    """Run one part; a failure becomes the outcome's error, never an exception."""
    t0 = time.perf_counter()
    out = Outcome()
    try:
        out.section = PARTS[name].run(ctx)
        out.status = "failed" if out.section.failed_cells else "ok"
    except Skipped as exc:
        out.status, out.section = "skipped", Section(lines=[f"Skipped: {exc}"])
    except Exception as exc:  # noqa: BLE001 - the point: record it and go on with the other parts
        out.status = "failed"
        frames = traceback.format_exception(type(exc), exc, exc.__traceback__)
        out.error = [f"{type(exc).__name__}: {exc}".splitlines()[0][:300], "",
                     *"".join(frames[-3:]).rstrip().splitlines()[-12:]]
        traceback.print_exc()
    finally:
        out.seconds = time.perf_counter() - t0
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # a part that ran out of memory must not starve the next
    return out


def main(argv: Sequence[str]) -> int:
    args = parse(argv)
    if args.smoke:
        # Triton decides when the kernels are defined whether to interpret; they are defined when
        # a part first imports common.kernels, after this line.
        os.environ.setdefault("TRITON_INTERPRET", "1")
        torch.set_num_threads(1)
    out_dir = Path(args.out) if args.out else (Path(tempfile.mkdtemp(prefix="gpu-check-smoke-")) if args.smoke
                                               else RESULTS)
    env = environment(args.smoke)
    slug = "cpu-smoke" if args.smoke else re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name(0).lower()).strip("-")
    report = out_dir / f"gpu-{slug}.md"
    command = "python bench/gpu_check.py" + ("".join(f" {a}" for a in argv) if argv else "")
    started, t_start = datetime.datetime.now(), time.perf_counter()
    outcomes = {name: Outcome() for name in args.parts}
    print(f"gpu_check: {env['device']}; torch {env['torch']}, triton {env['triton']}, CUDA {env['CUDA']}; "
          f"parts {', '.join(args.parts)} → {report}", flush=True)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        ctx = Context(smoke=args.smoke, device="cpu" if args.smoke else "cuda", tmp=Path(tmp),
                      say=lambda line: print(line, flush=True))
        for i, name in enumerate(args.parts, 1):
            print(f"[{i}/{len(args.parts)}] {name} — {PARTS[name].title} ...", flush=True)
            outcomes[name] = o = run_part(name, ctx)
            met = o.section.targets if o.section else []
            print(f"[{i}/{len(args.parts)}] {name}: {o.status} in {o.seconds:.1f} s"
                  + (f", targets met {sum(met)}/{len(met)}" if met else "")
                  + (f" ({o.error[0]})" if o.error else ""), flush=True)
            write_atomic(report, render(env, started, command, outcomes, time.perf_counter() - t_start))
    failed = [n for n, o in outcomes.items() if o.status == "failed"]
    print(f"gpu_check: wrote {report} in {time.perf_counter() - t_start:.0f} s; "
          + (f"FAILED parts: {', '.join(failed)}" if failed else "no part failed"), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    cli(main)
