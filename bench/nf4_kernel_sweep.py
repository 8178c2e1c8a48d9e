"""NF4 matmul kernels side by side on GLM-4V-9B's layer shapes (GPU): every candidate of the decode path at the
engine's batch sizes, and the large-row paths of prefill and vision, against bf16 cuBLAS on the same shape.

Decode rows (M <= 256): GPU time of CUDA-graph replays with L2 flushed between calls (a decode step is a graph
replay that streams every weight from HBM), as the tuner times them. Large M: the GPU time of eager calls (CUDA
events) and their wall time, host launches included (an eager prefill pays those). Every candidate's output is
checked against dequant + cuBLAS (triton_nf4.agrees); a candidate that differs or does not compile is listed, not
timed. Prints one table per part and writes bench/results/nf4_kernel_sweep.json (or --out).

    python bench/nf4_kernel_sweep.py [--rows 16,64] [--large] [--ttft 8,256] [--seconds 240]
                                     [--shapes lm.h_to_4h,lm.4h_to_h] [--grid]
    python bench/nf4_kernel_sweep.py --suggest GRID_JSON [--within 0.03]   # no GPU: tiles for the tuner's list
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "inference"))
# The Triton kernels swept here read bitsandbytes' layout: keep the layers in it (the Gluon ring kernel on the kernel
# layout has its own bench, nf4_gluon_probe.py).
os.environ.setdefault("VLMSERVE_NF4_LAYOUT", "bnb")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from vlmserve.gpu_timing import KERNEL_TIMING, event_time_us, graph_time_us, wall_time_us  # noqa: E402

DECODE_SHAPES = (("lm.qkv", 4608, 4096, True), ("lm.dense", 4096, 4096, False), ("lm.h_to_4h", 27392, 4096, False),
                 ("lm.4h_to_h", 4096, 13696, False), ("output_layer", 151552, 4096, False))
DEVICE = torch.device("cuda")
LARGE_SHAPES = (("vit.qkv", 5376, 1792, True, 6401), ("vit.fc1", 15360, 1792, True, 6401),
                ("vit.fc2", 1792, 15360, True, 6401), ("lm.qkv", 4608, 4096, True, 1611),
                ("lm.h_to_4h", 27392, 4096, False, 1611), ("lm.4h_to_h", 4096, 13696, False, 1611))


def decode_candidates(T, m: int, grid: bool = False):
    """The tuner's candidates for this row bucket, then more shapes of the dot kernel: a few of each decoding, or
    (grid) the register-table decoding (LUT 3, x read as it is) in the tuner's tiles and more."""
    bm = min(max(T._m_bucket(m), 16), 64)   # one row: the dot kernel's 16-row tile
    extra = []
    if grid:
        # the tuner's register-table tiles (LUT 3) with the block scale moved (on the weights / on the result), with
        # K split for half and twice the programs per SM, and capped at the register counts where 4-warp programs
        # fit 3, 4 and 5 per SM (a cap above the tile's own count changes nothing; one too low fails to build);
        # then more LUT 3 tiles, block scale on the weights
        for c in T.candidates(m):
            if c.lut == 3 and not c.maxnreg:
                extra.append(dataclasses.replace(c, scale_w=not c.scale_w))
                extra += [dataclasses.replace(c, waves=max(1, c.waves // 2)), dataclasses.replace(c, waves=2 * c.waves)]
                extra += [dataclasses.replace(c, maxnreg=cap) for cap in (168, 128, 96)]
        for bn, warps, stages, r, waves, a in ((64, 4, 4, 2, 4, True), (128, 4, 4, 1, 4, True), (128, 8, 3, 2, 2, True),
                                               (256, 8, 3, 1, 2, True), (64, 8, 3, 2, 4, True), (128, 4, 3, 4, 4, True),
                                               (64, 4, 3, 4, 4, True), (128, 8, 4, 2, 2, False),
                                               (64, 4, 3, 2, 8, False), (128, 4, 3, 2, 4, False)):
            extra.append(T._dot(bm, bn, warps, stages, r, 3, waves=waves, x_split=True, w_is_a=a, scale_w=True))
    else:
        for lut in (0, 1):
            for bn, warps, stages, r, waves, a in ((32, 4, 3, 4, 8, True), (64, 4, 3, 2, 4, True),
                                                   (64, 4, 4, 4, 2, True), (128, 4, 3, 2, 2, True),
                                                   (128, 8, 3, 4, 1, True), (64, 4, 3, 2, 4, False),
                                                   (128, 4, 2, 2, 2, False)):
                extra.append(T._dot(bm, bn, warps, stages, r, lut, waves=waves, w_is_a=a))
        for lut in (0, 1):
            for bn, warps, stages, r, waves in ((64, 4, 3, 2, 4), (128, 4, 3, 2, 2), (32, 4, 3, 4, 8)):
                extra.append(T._dot(bm, bn, warps, stages, r, lut, waves=waves, x_split=True))
    seen, out = set(), []
    for c in tuple(T.candidates(m)) + tuple(extra):
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out


def large_candidates(T):
    """dequant + cuBLAS at a few chunk sizes (fused tiles were 15-35x slower at these row counts on an H100)."""
    return [T._dq(2), T._dq(8), T._dq(64), T._dq(256)]


def label(c) -> str:
    if c.dequant:
        return f"dequant+cuBLAS {c.chunk_mib} MiB"
    kind = f"dot/lut{c.lut}" if c.lut is not None else "gemv" if c.block_m == 1 else "tc"
    kind += "/xs" if c.x_split else ""
    kind += "/sw" if c.scale_w else ""
    kind += f"/mr{c.maxnreg}" if c.maxnreg else ""
    return (f"{kind} {c.block_m}x{c.block_n} r{c.r} w{c.num_warps} s{c.num_stages} v{c.waves} "
            f"{'A' if c.w_is_a else 'B'}")


def run_decode(T, NF4Linear, rows: list[int], deadline: float, shapes: set[str] | None = None,
               grid: bool = False) -> list[dict]:
    bf = torch.bfloat16
    dev = DEVICE
    out = []
    for name, n, k, has_bias in DECODE_SHAPES:
        if shapes and name not in shapes:
            continue
        w16 = torch.randn(n, k, device=dev, dtype=bf) * 0.02
        b16 = torch.randn(n, device=dev, dtype=bf) * 0.1 if has_bias else None
        lin = NF4Linear.from_weight(w16, b16, compute_dtype=bf)
        op = lin._operand()
        for m in rows:
            x = torch.randn(m, k, device=dev, dtype=bf)
            t16 = graph_time_us(lambda: F.linear(x, w16, b16), **KERNEL_TIMING, device=dev)
            res = torch.empty(m, n, device=dev, dtype=bf)
            T._launch(x, op, b16, res, T._dq(8))
            ref = res.clone()
            cands = []
            for c in decode_candidates(T, m, grid):
                if time.monotonic() > deadline:
                    cands.append(dict(config=label(c), us=None, error="out of time"))
                    continue
                try:
                    T._launch(x, op, b16, res, c)
                    if not T.agrees(res, ref):
                        cands.append(dict(config=label(c), us=None, error="differs from dequant + cuBLAS"))
                        continue
                    t = graph_time_us(lambda: T._launch(x, op, b16, res, c), **KERNEL_TIMING, device=dev)
                    cands.append(dict(config=label(c), us=t))
                except Exception as exc:
                    cands.append(dict(config=label(c), us=None, error=f"{type(exc).__name__}: {str(exc)[:160]}"))
            timed = [c for c in cands if c["us"] is not None]
            best = min(timed, key=lambda c: c["us"]) if timed else None
            wbytes = n * k / 2 + n * k / 64
            row = dict(shape=name, M=m, N=n, K=k, bf16_us=t16, best=best, candidates=cands,
                       best_GBps=wbytes / (best["us"] * 1e-6) / 1e9 if best else None)
            out.append(row)
            print(f"{name:13s} M={m:4d}  bf16 {t16:7.1f} us  best nf4 "
                  + (f"{best['us']:7.1f} us  x{t16 / best['us']:5.2f}  {row['best_GBps']:5.0f} GB/s  {best['config']}"
                     if best else "none"), flush=True)
            print("    " + ", ".join(f"{c['config']}=" + (f"{c['us']:.0f}" if c["us"] is not None else "x")
                                     for c in cands), flush=True)
            for c in cands:
                if c.get("error") and c["error"] != "out of time":
                    print(f"    {c['config']}: {c['error']}", flush=True)
        del w16, lin, op
        torch.cuda.empty_cache()
    return out


def run_large(T, NF4Linear, deadline: float) -> list[dict]:
    bf = torch.bfloat16
    dev = DEVICE
    out = []
    for name, n, k, has_bias, m in LARGE_SHAPES:
        w16 = torch.randn(n, k, device=dev, dtype=bf) * 0.02
        b16 = torch.randn(n, device=dev, dtype=bf) * 0.1 if has_bias else None
        lin = NF4Linear.from_weight(w16, b16, compute_dtype=bf)
        op = lin._operand()
        x = torch.randn(m, k, device=dev, dtype=bf)
        g16 = event_time_us(lambda: F.linear(x, w16, b16))
        w16_wall = wall_time_us(lambda: F.linear(x, w16, b16))
        res = torch.empty(m, n, device=dev, dtype=bf)
        T._launch(x, op, b16, res, T._dq(8))
        ref = res.clone()
        cands = []
        for c in large_candidates(T):
            if time.monotonic() > deadline:
                cands.append(dict(config=label(c), error="out of time"))
                continue
            try:
                T._launch(x, op, b16, res, c)
                if not T.agrees(res, ref):
                    cands.append(dict(config=label(c), error="differs from dequant + cuBLAS"))
                    continue
                g = event_time_us(lambda: T._launch(x, op, b16, res, c))
                wall = wall_time_us(lambda: T._launch(x, op, b16, res, c))
                cands.append(dict(config=label(c), gpu_us=g, wall_us=wall,
                                  tflops=2 * m * n * k / (g * 1e-6) / 1e12))
            except Exception as exc:
                cands.append(dict(config=label(c), error=f"{type(exc).__name__}: {str(exc)[:160]}"))
        out.append(dict(shape=name, M=m, N=n, K=k, bf16_gpu_us=g16, bf16_wall_us=w16_wall,
                        bf16_tflops=2 * m * n * k / (g16 * 1e-6) / 1e12, candidates=cands))
        print(f"{name:13s} M={m:5d}  bf16 gpu {g16:8.1f} us wall {w16_wall:8.1f} us "
              f"({2 * m * n * k / (g16 * 1e-6) / 1e12:4.0f} TFLOP/s)", flush=True)
        for c in cands:
            if "gpu_us" in c:
                print(f"    {c['config']:40s} gpu {c['gpu_us']:8.1f} us  wall {c['wall_us']:8.1f} us  "
                      f"{c['tflops']:4.0f} TFLOP/s  x{g16 / c['gpu_us']:4.2f} of bf16", flush=True)
            else:
                print(f"    {c['config']:40s} {c['error']}", flush=True)
        del w16, lin, op
        torch.cuda.empty_cache()
    return out


@torch.inference_mode()
def run_ttft(scratch_mibs: list[int]) -> list[dict]:
    """A lone request's first token at full size (random weights), split into the vision tower and the decoder
    prefill, eager as generate runs it: bf16, then NF4 with each scratch size (the large-row tuner picks its path
    per shape on the first call, which the warm-up call pays)."""
    from nf4_memory_speed import build, prompt

    from vlmserve.gpu_timing import sync_time
    from vlmserve.quant import chunked
    from vlmserve.quant import triton_nf4 as T

    dev = DEVICE
    out = []

    def parts(model, label: str) -> dict:
        ids = prompt(1, dev)
        pixels = torch.randn(1, 3, 1120, 1120, device=dev)
        best = dict(vision_s=float("inf"), prefill_s=float("inf"), ttft_s=float("inf"))
        for _ in range(4):  # the first call tunes and compiles
            t0 = sync_time()
            vis = model.encode_images(pixels)
            t1 = sync_time()
            embeds, positions = model.embed(ids, vis, None)
            hidden = model.forward_embeds(embeds, positions, model.new_cache())
            model.logits(hidden[:, -1]).argmax(-1)
            t2 = sync_time()
            best = dict(vision_s=min(best["vision_s"], t1 - t0), prefill_s=min(best["prefill_s"], t2 - t1),
                        ttft_s=min(best["ttft_s"], t2 - t0))
            del vis, embeds, hidden
        row = dict(label=label, peak_allocated_gib=torch.cuda.max_memory_allocated() / 2 ** 30, **best)
        print(f"{label:28s} vision {best['vision_s'] * 1e3:7.1f} ms  prefill {best['prefill_s'] * 1e3:7.1f} ms  "
              f"TTFT {best['ttft_s'] * 1e3:7.1f} ms  peak {row['peak_allocated_gib']:.2f} GiB", flush=True)
        return row

    model, _, _ = build("bf16", dev)
    out.append(parts(model, "bf16"))
    del model
    torch.cuda.empty_cache()
    model, _, _ = build("nf4", dev)
    for mib in scratch_mibs:
        chunked._scratch.clear()
        os.environ["VLMSERVE_NF4_SCRATCH_MIB"] = str(mib)
        for key in [k for k in T._tuned if k[0] > T.MAX_FUSED_M]:
            del T._tuned[key]
        torch.cuda.reset_peak_memory_stats()
        row = parts(model, f"nf4, {mib} MiB scratch")
        row["large_m_paths"] = {f"{k[0]}x{k[1]}x{k[2]}": label(c) for k, c in T._tuned.items() if k[0] > T.MAX_FUSED_M}
        print("    " + ", ".join(f"{k}: {v}" for k, v in row["large_m_paths"].items()), flush=True)
        out.append(row)
    del model
    torch.cuda.empty_cache()
    return out


_LABEL = re.compile(r"^(?P<kind>dot|tc)(?:/lut(?P<lut>\d))?(?P<flags>(?:/\w+)*) (?P<bm>\d+)x(?P<bn>\d+) r(?P<r>\d+) "
                    r"w(?P<warps>\d+) s(?P<stages>\d+) v(?P<waves>\d+) (?P<op>[AB])$")


def config_of(text: str) -> str | None:
    """A grid label ("dot/lut3/xs/sw 16x128 r1 w4 s3 v4 A") as the tuner's constructor call, or None (dequant)."""
    m = _LABEL.match(text)
    if not m:
        return None
    flags = set(m["flags"].strip("/").split("/")) - {""}
    args = [m["bm"], m["bn"], m["warps"], m["stages"], m["r"]] + ([m["lut"]] if m["kind"] == "dot" else [])
    named = [f"waves={m['waves']}"] + (["w_is_a=False"] if m["op"] == "B" else [])
    named += [f"{name}=True" for flag, name in (("xs", "x_split"), ("sw", "scale_w"))
              if flag in flags]
    named += [f"maxnreg={f[2:]}" for f in sorted(flags) if re.fullmatch(r"mr\d+", f)]
    return f"_{m['kind']}(bm, {', '.join(args[1:] + named)})"


def suggest(grid: dict, within: float = 0.03) -> dict[str, list[str]]:
    """From a --grid run's JSON: each fused tile within `within` of its (shape, rows) winner, as the tuner's
    constructor call, with the (shape, rows) where it is; the union is the candidate list to consider."""
    picks: dict[str, list[str]] = {}
    for row in grid.get("decode", []):
        timed = [c for c in row["candidates"] if c.get("us") is not None and config_of(c["config"])]
        if not timed:
            continue
        best = min(c["us"] for c in timed)
        for c in sorted(timed, key=lambda c: c["us"]):
            if c["us"] <= best * (1 + within):
                picks.setdefault(config_of(c["config"]), []).append(
                    f"{row['shape']}@{row['M']} {c['us']:.1f} us ({c['us'] / row['bf16_us']:.2f}x bf16)")
    return picks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="16,64", help="decode row counts (comma separated)")
    ap.add_argument("--large", action="store_true", help="also the large-row paths (prefill, vision)")
    ap.add_argument("--seconds", type=float, default=240.0, help="stop timing new candidates after this")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                  "nf4_kernel_sweep.json"))
    ap.add_argument("--ttft", default="", help="also a lone request's TTFT split into vision and prefill: bf16, "
                                               "then NF4 at these scratch sizes in MiB (comma separated)")
    ap.add_argument("--skip-decode", action="store_true")
    ap.add_argument("--shapes", default="", help="only these decode shapes (comma separated, e.g. lm.h_to_4h)")
    ap.add_argument("--grid", action="store_true", help="decode: a grid of the x-as-it-is table decoding instead "
                                                        "of a few of each decoding")
    ap.add_argument("--suggest", metavar="GRID_JSON",
                    help="no GPU: read a --grid run and print the tiles within --within of each shape's winner, "
                         "for the tuner's list")
    ap.add_argument("--within", type=float, default=0.03)
    args = ap.parse_args()
    if args.suggest:
        with open(args.suggest) as f:
            for call, where in suggest(json.load(f), args.within).items():
                print(f"{call},  # {'; '.join(where)}")
        return 0
    if not torch.cuda.is_available():
        print("needs a CUDA GPU", file=sys.stderr)
        return 2
    from vlmserve.quant import triton_nf4 as T
    from vlmserve.quant.linear import NF4Linear

    os.environ.setdefault("VLMSERVE_NF4_SCRATCH_MIB", "256")  # the 256 MiB candidate needs the room
    deadline = time.monotonic() + args.seconds
    rows = [int(r) for r in args.rows.split(",") if r]
    result = dict(machine=dict(gpu=torch.cuda.get_device_name(), torch=torch.__version__,
                               triton=__import__("triton").__version__),
                  command=" ".join(["python"] + sys.argv))
    # with torch.inference_mode(): lin's buffers are plain tensors either way
    if not args.skip_decode:
        result["decode"] = run_decode(T, NF4Linear, rows, deadline, {s for s in args.shapes.split(",") if s},
                                      args.grid)
    if args.large:
        result["large"] = run_large(T, NF4Linear, deadline + 120)
    if args.ttft:
        result["ttft"] = run_ttft([int(v) for v in args.ttft.split(",")])
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
