"""Benchmark the fused bias + LeakyReLU + gain against eager PyTorch and torch.compile.

    python bench/kernel.py            # on a CUDA GPU: writes bench/results/kernel-<gpu>.md
    python bench/kernel.py --smoke    # anywhere: tiny CPU dry run of every code path, writes nothing

What it measures (GPU; every time is the median of repeated runs through
``triton.testing.do_bench``, which records CUDA events and flushes L2 before each run):

* forward and forward+backward (grad of x and of the bias) on the activation shapes of the real
  DCGAN layers (batch 128, 64x64 images, ngf = ndf = 64) and on one tensor of >= 256 MB
  (NCHW and channels_last), in bf16 and fp32, for three implementations:
  eager ``F.leaky_relu(x + b) * gain``, ``torch.compile`` of that (compile time excluded, reported
  apart) and ``common.kernels.fused_leaky_relu``;
* effective bandwidth = bytes that must move / time (forward: read x, write y; forward+backward:
  also read dy and y, write dx: 5 tensor passes), beside a device-to-device copy of the same
  size measured in the same run;
* peak memory and time of one DCGAN training step (G and D, Adam) with eager vs fused
  activations (a self-contained DCGAN below; apps/ is not imported).

Before timing, each implementation's output and gradients are checked against float64.
"""

from __future__ import annotations

import argparse
import datetime
import math
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `python bench/kernel.py` from a checkout that is not installed

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from common.kernels import fused_leaky_relu  # noqa: E402

ALPHA, GAIN = 0.2, math.sqrt(2)
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}


# ----------------------------------------------------------------------------- implementations


def eager(x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The unfused composition: three kernels forward, three or more backward."""
    return F.leaky_relu(x + b.view(1, -1, 1, 1), ALPHA) * GAIN


def ours(x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return fused_leaky_relu(x, b, ALPHA, GAIN, 1)


def make_compiled() -> Callable:
    """A fresh torch.compile of ``eager`` (reset, so each shape compiles once, statically)."""
    torch._dynamo.reset()
    return torch.compile(eager, dynamic=False)


# ----------------------------------------------------------------------------- timing


def timer(device: str, rep_ms: int) -> Callable[[Callable], float]:
    """Median seconds of ``fn``: CUDA events via do_bench on GPU, perf_counter on CPU (smoke)."""
    if device == "cuda":
        import triton.testing

        return lambda fn: triton.testing.do_bench(fn, warmup=max(rep_ms // 4, 5), rep=rep_ms, return_mode="median") / 1e3

    def cpu(fn: Callable) -> float:
        fn()
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    return cpu


def rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got.double() - want).norm() / want.norm().clamp_min(1e-30)).item()


def check(fn: Callable, x: torch.Tensor, b: torch.Tensor, gy: torch.Tensor) -> float:
    """Worst relative error (output, dx, db) of ``fn`` against eager in float64."""
    x64 = x.detach().double().requires_grad_()
    b64 = b.detach().double().requires_grad_()
    want = eager(x64, b64)
    want_g = torch.autograd.grad(want, (x64, b64), gy.double())
    xx = x.detach().requires_grad_()
    bb = b.detach().requires_grad_()
    y = fn(xx, bb)
    got_g = torch.autograd.grad(y, (xx, bb), gy)
    return max(rel_err(y, want), rel_err(got_g[0], want_g[0]), rel_err(got_g[1], want_g[1]))


def bench_case(shape, dtype, layout, device, measure, use_compile) -> dict:
    """Forward and forward+backward of every implementation on one activation shape."""
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    x = torch.randn(shape, device=device).to(dtype).contiguous(memory_format=fmt)
    b = torch.randn(shape[1], device=device).to(dtype)
    gy = torch.randn(shape, device=device).to(dtype).contiguous(memory_format=fmt)
    nbytes = x.numel() * x.element_size()
    dst = torch.empty_like(x)
    row = {"shape": shape, "dtype": dtype, "layout": layout, "mb": nbytes / 2**20,
           "copy_s": measure(lambda: dst.copy_(x))}
    del dst
    impls = {"eager": eager, "ours": ours}
    if use_compile:
        compiled = make_compiled()
        t0 = time.perf_counter()
        xg, bg = x.detach().requires_grad_(), b.detach().requires_grad_()
        try:
            torch.autograd.grad(compiled(xg, bg), (xg, bg), gy)  # compiles forward and backward
            with torch.no_grad():
                compiled(x, b)  # the inference graph is a separate compile
            if device == "cuda":
                torch.cuda.synchronize()
            row["compile_s"] = time.perf_counter() - t0
            impls["compile"] = compiled
        except Exception as exc:  # keep the other columns if inductor fails on this machine
            row["compile_error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            print(f"torch.compile failed for {shape}: {row['compile_error']}", file=sys.stderr)
    xg, bg = x.detach().requires_grad_(), b.detach().requires_grad_()
    for name, fn in impls.items():
        row[f"{name}_err"] = check(fn, x, b, gy)
        with torch.no_grad():
            row[f"{name}_fwd_s"] = measure(lambda: fn(x, b))
        row[f"{name}_fb_s"] = measure(lambda: torch.autograd.grad(fn(xg, bg), (xg, bg), gy))
    row["fwd_bytes"] = 2 * nbytes
    row["fb_bytes"] = 5 * nbytes
    return row


# ----------------------------------------------------------------------------- DCGAN step


class Act(nn.Module):
    """Per-channel bias + LeakyReLU + gain, eager or fused (optionally in place)."""

    def __init__(self, channels: int, mode: str):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "eager":  # bias cast to x's dtype: no silent promotion under autocast
            return F.leaky_relu(x + self.bias.to(x.dtype).view(1, -1, 1, 1), ALPHA) * GAIN
        return fused_leaky_relu(x, self.bias, ALPHA, GAIN, 1, inplace=self.mode == "fused-inplace")


def dcgan(nz: int, ngf: int, ndf: int, mode: str) -> tuple[nn.Module, nn.Module]:
    """pytorch/examples' 64x64 DCGAN, with the activation swapped for ``Act``."""
    def up(cin, cout, first=False):
        conv = nn.ConvTranspose2d(cin, cout, 4, 1, 0, bias=False) if first else nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)
        return [conv, nn.BatchNorm2d(cout), Act(cout, mode)]

    def down(cin, cout, bn=True):
        return [nn.Conv2d(cin, cout, 4, 2, 1, bias=False)] + ([nn.BatchNorm2d(cout)] if bn else []) + [Act(cout, mode)]

    g = nn.Sequential(*up(nz, ngf * 8, True), *up(ngf * 8, ngf * 4), *up(ngf * 4, ngf * 2), *up(ngf * 2, ngf),
                      nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False), nn.Tanh())
    d = nn.Sequential(*down(3, ndf, bn=False), *down(ndf, ndf * 2), *down(ndf * 2, ndf * 4), *down(ndf * 4, ndf * 8),
                      nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Flatten())
    return g, d


def dcgan_step_stats(mode: str, device: str, batch: int, width: int, amp: bool, measure) -> dict:
    """Peak memory (GPU) and median time of one full DCGAN training step (D then G)."""
    torch.manual_seed(0)
    g, d = (m.to(device) for m in dcgan(100, width, width, mode))
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    real = torch.randn(batch, 3, 64, 64, device=device).tanh()
    z = torch.randn(batch, 100, 1, 1, device=device)
    ones, zeros = torch.ones(batch, 1, device=device), torch.zeros(batch, 1, device=device)
    bce = nn.BCEWithLogitsLoss()

    def step():
        with torch.autocast(device, dtype=torch.bfloat16, enabled=amp):
            opt_d.zero_grad(set_to_none=True)
            fake = g(z)
            loss_d = bce(d(real).float(), ones) + bce(d(fake.detach()).float(), zeros)
            loss_d.backward()
            opt_d.step()
            opt_g.zero_grad(set_to_none=True)
            loss_g = bce(d(fake).float(), ones)
            loss_g.backward()
            opt_g.step()

    out = {"mode": mode, "amp": amp}
    try:
        step()  # optimizer state, cuDNN algorithm choice, kernel compiles
    except Exception as exc:  # report it in the table rather than lose the kernel figures
        out["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        return out
    if device == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        out["peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        out["peak_above_mb"] = (torch.cuda.max_memory_allocated() - base) / 2**20
    out["step_s"] = measure(step)
    return out


# ----------------------------------------------------------------------------- report


def versions() -> dict:
    import triton

    info = {"torch": torch.__version__, "triton": triton.__version__, "cuda": str(torch.version.cuda),
            "python": sys.version.split()[0]}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=p.name, sms=p.multi_processor_count, memory_gb=round(p.total_memory / 1e9, 1))
    return info


def report(rows: list[dict], steps: list[dict], info: dict, args) -> str:
    lines = [f"# Fused LeakyReLU kernel benchmark — {info.get('gpu', 'CPU smoke run')}", "",
             f"Generated {datetime.datetime.now().isoformat(timespec='seconds')} by `python bench/kernel.py "
             f"{' '.join(sys.argv[1:])}`.", "",
             "| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in info.items()]
    lines += ["", f"alpha = {ALPHA}, gain = sqrt(2), bias per channel (dim 1). Times are medians (µs); "
              "GB/s = bytes that must move / time (forward 2 passes, forward+backward 5); "
              "`%copy` = that bandwidth over a device-to-device copy of the same tensor in this run "
              "(copy counts read + write). `xE` / `xC` = speed-up of ours over eager / torch.compile.", ""]
    has_c = any("compile_fb_s" in r for r in rows)
    head = "| shape | dtype | layout | MB | copy GB/s | pass | eager µs | " + ("compile µs | " if has_c else "") + \
        "ours µs | ours GB/s | %copy | xE | " + ("xC | " if has_c else "") + "max rel err |"
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        copy_bw = 2 * r["mb"] * 2**20 / r["copy_s"] / 1e9
        for p, nbytes in (("fwd", r["fwd_bytes"]), ("fb", r["fb_bytes"])):
            bw = nbytes / r[f"ours_{p}_s"] / 1e9
            cells = ["x".join(map(str, r["shape"])), str(r["dtype"]).replace("torch.", ""), r["layout"],
                     f"{r['mb']:.1f}", f"{copy_bw:.0f}", "fwd" if p == "fwd" else "fwd+bwd",
                     f"{r[f'eager_{p}_s'] * 1e6:.1f}"]
            if has_c:
                cells.append(f"{r[f'compile_{p}_s'] * 1e6:.1f}" if "compile_fb_s" in r else "n/a")
            cells += [f"{r[f'ours_{p}_s'] * 1e6:.1f}", f"{bw:.0f}", f"{100 * bw / copy_bw:.0f}%",
                      f"{r[f'eager_{p}_s'] / r[f'ours_{p}_s']:.2f}"]
            if has_c:
                cells.append(f"{r[f'compile_{p}_s'] / r[f'ours_{p}_s']:.2f}" if "compile_fb_s" in r else "n/a")
            cells.append(f"{max(r[k] for k in r if k.endswith('_err')):.1e}")
            lines.append("| " + " | ".join(cells) + " |")
    if has_c:
        lines += ["", "torch.compile time per shape (forward+backward+inference graphs, excluded above): " +
                  ", ".join(f"{'x'.join(map(str, r['shape']))}/{str(r['dtype'])[6:]}/{r['layout']}: {r['compile_s']:.1f}s"
                            for r in rows if "compile_s" in r)]
    for r in rows:
        if "compile_error" in r:
            lines.append(f"torch.compile failed on {'x'.join(map(str, r['shape']))}: {r['compile_error']}")
    lines += ["", "## One DCGAN training step (batch %d, 64x64, ngf = ndf = %d, Adam)" % (args.batch, args.width), "",
              "| activation | precision | peak MB | peak above weights+state MB | step ms |", "|---|---|---|---|---|"]
    for s in steps:
        if "error" in s:
            lines.append(f"| {s['mode']} | {'bf16 autocast' if s['amp'] else 'fp32'} | failed: {s['error']} | | |")
            continue
        lines.append(f"| {s['mode']} | {'bf16 autocast' if s['amp'] else 'fp32'} | {s.get('peak_mb', float('nan')):.0f} | "
                     f"{s.get('peak_above_mb', float('nan')):.0f} | {s['step_s'] * 1e3:.2f} |")
    lines += ["", "## Targets (issue 3, forward+backward on the large tensor)", ""]
    for r in rows:
        if r.get("large"):
            copy_bw = 2 * r["mb"] * 2**20 / r["copy_s"] / 1e9
            bw = r["fb_bytes"] / r["ours_fb_s"] / 1e9
            checks = [f"{100 * bw / copy_bw:.0f}% of copy (target >= 80%)",
                      f"{r['eager_fb_s'] / r['ours_fb_s']:.2f}x eager (target >= 2)"]
            if "compile_fb_s" in r:
                checks.append(f"{r['compile_fb_s'] / r['ours_fb_s']:.2f}x torch.compile (target >= 1.0)")
            lines.append(f"- {str(r['dtype'])[6:]} {r['layout']}: " + "; ".join(checks))
    for amp in (False, True):
        by = {s["mode"]: s for s in steps if s["amp"] == amp}
        if "peak_mb" in by.get("eager", {}) and "peak_mb" in by.get("fused", {}):
            lines.append(f"- DCGAN peak memory ({'bf16' if amp else 'fp32'}): fused {by['fused']['peak_mb']:.0f} MB vs "
                         f"eager {by['eager']['peak_mb']:.0f} MB (target: no higher)")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny CPU run of every code path; writes nothing")
    ap.add_argument("--dtypes", default="bf16,fp32", help="comma list of bf16, fp16, fp32")
    ap.add_argument("--no-compile", action="store_true", help="skip the torch.compile column")
    ap.add_argument("--rep-ms", type=int, default=200, help="do_bench repetition time per measurement")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"), help="results folder (GPU runs only)")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available() and not args.smoke:
        print("bench/kernel.py: no CUDA GPU here, so no figures to record and no results file is written. "
              "Run it on a GPU machine, or pass --smoke for a CPU dry run.", file=sys.stderr)
        return 2
    smoke = args.smoke
    device = "cpu" if smoke else "cuda"
    torch.manual_seed(0)
    if smoke:
        torch.set_num_threads(1)
    else:
        torch.backends.cudnn.benchmark = True
    args.batch, args.width = (2, 8) if smoke else (128, 64)
    n, w = args.batch, args.width
    # G's activations, largest channel count first; D's are the same four shapes in reverse.
    dcgan_shapes = [(n, w * 8, 4, 4), (n, w * 4, 8, 8), (n, w * 2, 16, 16), (n, w, 32, 32)]
    measure = timer(device, args.rep_ms)
    use_compile = not args.no_compile and not smoke
    info = versions()
    print(" ".join(f"{k}={v}" for k, v in info.items()), flush=True)
    rows = []
    for dname in args.dtypes.split(","):
        dtype = DTYPES[dname.strip()]
        elems = (2 * 16 * 32 * 32) if smoke else -(-256 * 2**20 // torch.tensor([], dtype=dtype).element_size())
        large = (max(1, elems // (256 * 64 * 64)), 256, 64, 64) if not smoke else (2, 16, 32, 32)
        cases = [(s, "contiguous", False) for s in dcgan_shapes] + [(large, "contiguous", True), (large, "channels_last", True)]
        for shape, layout, is_large in cases:
            row = bench_case(shape, dtype, layout, device, measure, use_compile)
            row["large"] = is_large
            rows.append(row)
            print(f"{dname} {layout:13s} {'x'.join(map(str, shape)):16s} fwd+bwd µs: eager {row['eager_fb_s'] * 1e6:9.1f}  "
                  + (f"compile {row['compile_fb_s'] * 1e6:9.1f}  " if use_compile else "")
                  + f"ours {row['ours_fb_s'] * 1e6:9.1f}  (copy {row['copy_s'] * 1e6:.1f})", flush=True)
    steps = [dcgan_step_stats(mode, device, n, w, amp, measure)
             for amp in ((False,) if smoke else (False, True)) for mode in ("eager", "fused", "fused-inplace")]
    text = report(rows, steps, info, args)
    print(text)
    if smoke:
        print("smoke mode: CPU timings are not figures; nothing was written.")
        return 0
    slug = re.sub(r"[^a-z0-9]+", "-", info["gpu"].lower()).strip("-")
    out = Path(args.out) / f"kernel-{slug}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
