"""Which kernels a caption request's GPU time goes to, and how much of it the GPU sits idle (GPU only).

serve_profile.py says how long each phase takes; this says what inside a phase the time is spent on, so that the
next optimisation is chosen from a measurement. Each section runs under torch.profiler (CUDA activity, CUDA-graph
replays included) on full-size random weights:
  vision   one vision micro-batch (--vision-batch images of 1120 px)
  prefill  the decoder over --prefill-rows image prompts (1,611 tokens each), as the engine's prefix pass
  decode   --decode-steps decode steps of --decode-rows sequences at 1,711 tokens of context (CUDA-graph replays);
           a comma list of row counts gives one decode section each (--sections decode: only those)
  serve    the engine itself serving the caption task at --serve-concurrency clients: a window of --serve-window
           seconds in the steady state (after --serve-warm seconds of load), every kernel of every phase as it
           really interleaves, so the GPU's idle share is what serving leaves idle (not in the default list)
and reports, per section: its wall time, the GPU's busy time (kernel time, overlaps merged) and idle share, the idle
gaps between kernels split into launch latency (short gaps) and waits for the host (long ones), the time per kernel
category (GEMM, attention, NF4 / fused Triton kernels, other element-wise, copies) and the top kernels.

    PYTHONPATH=inference:bench python bench/gpu_kernel_profile.py [--quant none|nf4|fp8]

Writes bench/results/gpu_kernel_profile[_QUANT].json ($OUT/... when OUT is set).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time

import torch

from result_path import result_path

# First match wins: attention before GEMM (cuDNN's and flash's fused attention kernels may carry "gemm"-like names).
CATEGORIES = (
    ("attention", re.compile(r"flash|fmha|attention|attn|sdpa|cudnn", re.I)),
    ("nf4 / fp8 kernels", re.compile(r"nf4|_dot_kernel|gemv|_splitk_reduce|dequant|fp8|scaled_mm|quantize", re.I)),
    ("gemm", re.compile(r"gemm|cutlass|xmma|nvjet|cublas|wgmma|sm90_|sm80_|matmul", re.I)),
    ("fused norm / activation (triton)", re.compile(r"^triton_|rms|layer_norm|swiglu|gelu|_wide_rows", re.I)),
    ("copies / fills", re.compile(r"memcpy|memset|copy|fill|cat|index|gather|scatter", re.I)),
    ("other element-wise / reductions", re.compile(r"elementwise|vectorized|reduce|softmax|unrolled|kernel", re.I)),
)


def category(name: str) -> str:
    for label, pattern in CATEGORIES:
        if pattern.search(name):
            return label
    return "other"


def busy_us(spans: list[tuple[float, float]]) -> float:
    """Length of the union of [start, end) spans: kernels on several streams may overlap."""
    total, end = 0.0, float("-inf")
    for s, e in sorted(spans):
        if e <= end:
            continue
        total += e - max(s, end)
        end = e
    return total


SHORT_GAP_US = 20.0   # shorter idle gaps are kernel-to-kernel launch latency (inside a graph replay or a launch
                      # queue); longer ones are the GPU waiting for the host (between decode steps, a sync)


def gaps_us(spans: list[tuple[float, float]], short: float = SHORT_GAP_US) -> dict:
    """The idle gaps between consecutive kernels (overlaps merged), split at `short` us: how much of the idle time
    is launch latency between kernels, which only fewer kernels (or overlapped launches) remove, and how much is
    the GPU waiting for the host."""
    ends, gaps = float("-inf"), []
    for s, e in sorted(spans):
        if s > ends > float("-inf"):
            gaps.append(s - ends)
        ends = max(ends, e)
    small = sorted(g for g in gaps if g < short)
    return {"short_gaps": len(small), "short_gap_ms": sum(small) / 1e3,
            "short_gap_median_us": small[len(small) // 2] if small else None,
            "long_gaps": len(gaps) - len(small), "long_gap_ms": sum(g for g in gaps if g >= short) / 1e3}


def summarize(kernels: list[tuple[str, float, float]], wall_us: float, top: int = 8) -> dict:
    """kernels: (name, start us, duration us) of every GPU kernel / copy of one section; wall_us: the section's
    span on the host clock, synchronised at both ends."""
    by_cat: dict[str, float] = {}
    by_name: dict[str, list] = {}
    for name, _, dur in kernels:
        by_cat[category(name)] = by_cat.get(category(name), 0.0) + dur
        entry = by_name.setdefault(name, [0.0, 0])
        entry[0] += dur
        entry[1] += 1
    busy = busy_us([(s, s + d) for _, s, d in kernels])
    total = sum(by_cat.values()) or 1.0
    return {
        "wall_ms": wall_us / 1e3,
        "gpu_busy_ms": busy / 1e3,
        "gpu_idle_fraction": max(0.0, 1 - busy / wall_us) if wall_us > 0 else None,
        "kernels": len(kernels),
        "idle_gaps": gaps_us([(s, s + d) for _, s, d in kernels]),
        "categories_ms": {k: v / 1e3 for k, v in sorted(by_cat.items(), key=lambda kv: -kv[1])},
        "categories_share": {k: v / total for k, v in sorted(by_cat.items(), key=lambda kv: -kv[1])},
        "top_kernels": [{"name": n[:160], "ms": t / 1e3, "calls": c, "category": category(n)}
                        for n, (t, c) in sorted(by_name.items(), key=lambda kv: -kv[1][0])[:top]],
    }


def profiled(fn, repeat: int = 1, top: int = 8) -> dict:
    """Runs fn() once to warm up, then `repeat` times under the profiler; the summary of the profiled calls."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        t = time.perf_counter()
        for _ in range(repeat):
            fn()
        torch.cuda.synchronize()
        wall = (time.perf_counter() - t) * 1e6
    kernels = [(e.name, e.time_range.start, e.time_range.end - e.time_range.start) for e in prof.events()
               if e.device_type == torch.autograd.DeviceType.CUDA]
    return summarize(kernels, wall, top)


def profiled_window(start: float, seconds: float, top: int = 8) -> dict:
    """Profiles whatever runs on the GPU (any thread) from `start` seconds from now for `seconds`."""
    from torch.profiler import ProfilerActivity, profile

    time.sleep(start)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        t = time.perf_counter()
        time.sleep(seconds)
        torch.cuda.synchronize()
        wall = (time.perf_counter() - t) * 1e6
    kernels = [(e.name, e.time_range.start, e.time_range.end - e.time_range.start) for e in prof.events()
               if e.device_type == torch.autograd.DeviceType.CUDA]
    return summarize(kernels, wall, top)


def serve_section(model, cfg, args) -> dict:
    """The engine under load from concurrent clients (serve_throughput.drive on a thread), profiled in a window."""
    import asyncio
    import threading

    from serve_throughput import SLOT_LEN, IdTokenizer, drive
    from vlmserve.engine import Engine, EngineConfig

    c = args.serve_concurrency
    engine = Engine(model, IdTokenizer(), EngineConfig(max_batch=c, slot_len=SLOT_LEN, max_waiting=10_000)).start()
    engine.decoder.warm_up(SLOT_LEN)
    s = cfg.vision.image_size
    pixels = torch.randn(3, s, s).pin_memory()
    asyncio.run(drive(engine, pixels, 2, 2, ["caption"], 8))
    result: dict = {}
    load = threading.Thread(target=lambda: result.update(asyncio.run(
        drive(engine, pixels, args.serve_images, c, ["caption"], 256))))
    load.start()
    section = profiled_window(args.serve_warm, args.serve_window, args.top)
    load.join()
    engine.stop()
    section["load"] = {k: result.get(k) for k in ("images", "seconds", "images_per_s")}
    section["concurrency"] = c
    print(f"serve load: {section['load']}", flush=True)
    return section


def print_section(title: str, s: dict) -> None:
    print(f"\n{title}: wall {s['wall_ms']:.1f} ms, GPU busy {s['gpu_busy_ms']:.1f} ms "
          f"(idle {s['gpu_idle_fraction']:.1%}), {s['kernels']} kernels")
    g = s["idle_gaps"]
    if g["short_gaps"] or g["long_gaps"]:
        print(f"idle between kernels: {g['short_gap_ms']:.2f} ms in {g['short_gaps']} gaps under {SHORT_GAP_US:.0f} us "
              f"(median {g['short_gap_median_us'] or 0:.1f} us), {g['long_gap_ms']:.2f} ms in {g['long_gaps']} longer")
    print("| category | ms | share of kernel time |\n|---|---|---|")
    for k, v in s["categories_ms"].items():
        print(f"| {k} | {v:.2f} | {s['categories_share'][k]:.1%} |")
    for k in s["top_kernels"]:
        print(f"  {k['ms']:8.2f} ms {k['calls']:5d}x  [{k['category']}] {k['name'][:110]}")
    sys.stdout.flush()


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--quant", choices=["none", "nf4", "fp8"], default="none")
    p.add_argument("--vision-batch", type=int, default=8)
    p.add_argument("--prefill-rows", type=int, default=8)
    p.add_argument("--decode-rows", default="128", help="comma list: one decode section per row count")
    p.add_argument("--sections", default="vision,prefill,decode", help="which of vision, prefill, decode to run")
    p.add_argument("--top", type=int, default=8, help="kernels listed per section")
    p.add_argument("--decode-steps", type=int, default=20)
    p.add_argument("--serve-concurrency", type=int, default=128)
    p.add_argument("--serve-images", type=int, default=160, help="images the serve section's clients send in all")
    p.add_argument("--serve-warm", type=float, default=12.0, help="seconds of load before the profiled window")
    p.add_argument("--serve-window", type=float, default=6.0)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("needs a CUDA GPU", file=sys.stderr)
        return 2
    from serve_throughput import IdTokenizer, build_model, prompt
    from vlmserve.engine import Engine, EngineConfig

    torch.backends.cuda.matmul.allow_tf32 = True
    model, cfg = build_model(args.quant)
    name = args.out or f"bench/results/gpu_kernel_profile{'' if args.quant == 'none' else '_' + args.quant}.json"
    out = result_path(name)
    results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "quant": args.quant,
               "settings": vars(args), "sections": {}}

    def record(key: str, title: str, s: dict) -> None:
        results["sections"][key] = s
        out.write_text(json.dumps(results, indent=2))    # after every section: a run cut short keeps what it measured
        print_section(title, s)

    s = cfg.vision.image_size
    sections = set(args.sections.split(","))
    with torch.inference_mode():
        if "vision" in sections:
            px = torch.randn(args.vision_batch, 3, s, s, device="cuda", dtype=torch.bfloat16)
            record("vision", f"vision tower, {args.vision_batch} images",
                   profiled(lambda: model.encode_images(px), top=args.top))
            del px
        plen = len(prompt("caption")) + cfg.n_vision_embeds - 3
        if "prefill" in sections:
            emb = torch.randn(args.prefill_rows, plen, cfg.hidden_size, device="cuda", dtype=torch.bfloat16) * 0.02
            pos = torch.arange(plen, device="cuda").expand(args.prefill_rows, plen)
            record("prefill", f"decoder prefill, {args.prefill_rows} rows x {plen} tokens",
                   profiled(lambda: model.forward_embeds(emb, pos, model.new_cache()), top=args.top))
            del emb, pos
        torch.cuda.empty_cache()
        for b in (int(r) for r in args.decode_rows.split(",") if "decode" in sections):
            engine = Engine(model, IdTokenizer(), EngineConfig(max_batch=b, slot_len=2048))
            ctx = plen + 100
            step = lambda: engine.decoder.run([1] * b, [ctx] * b, [ctx] * b)   # noqa: E731
            key = "decode" if args.decode_rows == "128" else f"decode_{b}"
            record(key, f"decode, {args.decode_steps} steps x {b} rows, {ctx} tokens of context (CUDA graphs)",
                   profiled(step, repeat=args.decode_steps, top=args.top))
            del engine, step
            torch.cuda.empty_cache()
    if "serve" in sections:
        record("serve", f"serving at concurrency {args.serve_concurrency}, a {args.serve_window:.0f} s window after "
               f"{args.serve_warm:.0f} s of load", serve_section(model, cfg, args))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
