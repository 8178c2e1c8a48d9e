"""Where a GLM-4V-9B caption request's GPU time goes, and what the scheduler does with it (GPU only).

One run prints and writes (bench/results/serve_profile.json):
  1. the vision tower's attention shape (16 heads x 112 dims x 6401 tokens) on each SDPA backend:
     time, TFLOP/s, extra memory, error against the math backend in float32;
  2. the vision tower per image at several micro-batch sizes, with the default backend order and
     with flash forced;
  3. an image-prefix prefill (1611 tokens) at several rows, and one decode step (CUDA graph) at
     64 and 128 sequences;
  4. the engine at concurrency 64 with every phase synchronised and timed (admit, vision, prefix
     prefill, text prefill, decode, sample+emit), so the per-round overhead shows;
  5. serving throughput and time to first token at concurrency 64 for several prefill-per-round
     budgets (the old unbounded admission included), and at the larger concurrencies.

    PYTHONPATH=inference python bench/serve_profile.py
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

import vlmserve.attention as attention
from vlmserve.engine import Engine, EngineConfig
from vlmserve.gpu_timing import event_time_us
from result_path import result_path
from serve_throughput import IdTokenizer, build_model, drive, flops_per_request, matmul_peak, prompt


def timed(fn, iters: int = 10, warmup: int = 2) -> float:
    """Median seconds of `fn()` over `iters` runs, by CUDA events."""
    return event_time_us(fn, iters, warmup) / 1e6


def attention_backends(out: dict) -> None:
    heads, dim, tokens = 16, 112, 6401
    rows = []
    for batch in (1, 4, 8):
        q, k, v = (torch.randn(batch, heads, tokens, dim, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        ref = None
        if batch == 1:
            with sdpa_kernel([SDPBackend.MATH]):
                ref = F.scaled_dot_product_attention(q.float(), k.float(), v.float())
        flops = 4 * batch * heads * tokens * tokens * dim
        for backend in (SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION):
            row = {"batch": batch, "backend": backend.name}
            try:
                with sdpa_kernel([backend]):
                    torch.cuda.synchronize()
                    base = torch.cuda.memory_allocated()
                    torch.cuda.reset_peak_memory_stats()
                    o = F.scaled_dot_product_attention(q, k, v)
                    torch.cuda.synchronize()
                    row["extra_mib"] = (torch.cuda.max_memory_allocated() - base) / 2**20
                    if ref is not None:
                        row["rel_err_vs_fp32"] = float((o.float() - ref).norm() / ref.norm())
                    s = timed(lambda: F.scaled_dot_product_attention(q, k, v))
                row.update(ms=s * 1e3, tflops=flops / s / 1e12)
            except RuntimeError as e:
                row["error"] = str(e).splitlines()[0][:200]
            rows.append(row)
            print(f"attention B={batch} {backend.name:<20} " + (
                f"{row['ms']:8.2f} ms {row['tflops']:6.0f} TFLOP/s  +{row['extra_mib']:.0f} MiB"
                + (f"  err {row['rel_err_vs_fp32']:.1e}" if "rel_err_vs_fp32" in row else "")
                if "ms" in row else row["error"]), flush=True)
        del q, k, v
    out["attention_backends"] = rows


def vision_batches(model, cfg, out: dict, sizes) -> None:
    rows = []
    s = cfg.vision.image_size
    default = list(attention.FULL_BACKENDS)
    for order_name, order in (("cudnn first", default),
                              ("flash", [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])):
        attention.FULL_BACKENDS = order
        for b in sizes:
            px = torch.randn(b, 3, s, s, device="cuda", dtype=torch.bfloat16)
            torch.cuda.synchronize()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            with torch.inference_mode():
                t = timed(lambda: model.encode_images(px), iters=3, warmup=1)
            extra = (torch.cuda.max_memory_allocated() - base) / 2**30
            rows.append({"attention": order_name, "batch": b, "ms_per_image": t * 1e3 / b, "extra_gib": extra})
            print(f"vision ({order_name}) micro-batch {b:>2}: {t * 1e3 / b:7.1f} ms/image, +{extra:.2f} GiB", flush=True)
            del px
    attention.FULL_BACKENDS = default
    out["vision_micro_batch"] = rows


def prefill_and_decode(model, engine, cfg, out: dict) -> None:
    rows = []
    n = cfg.n_vision_embeds
    plen = len(prompt("caption")) + n - 3
    for b in (1, 4, 10):
        emb = torch.randn(b, plen, cfg.hidden_size, device="cuda", dtype=torch.bfloat16) * 0.02
        pos = torch.arange(plen, device="cuda").expand(b, plen)
        with torch.inference_mode():
            t = timed(lambda: model.forward_embeds(emb, pos, model.new_cache()), iters=3, warmup=1)
        rows.append({"kind": "prefix prefill", "rows": b, "tokens": plen, "ms_per_row": t * 1e3 / b})
        print(f"prefix prefill {b:>2} rows x {plen} tokens: {t * 1e3 / b:7.1f} ms/row", flush=True)
    for b in (64, min(128, engine.n_slots)):
        with torch.inference_mode():
            t = timed(lambda: engine.decoder.run([1] * b, [plen] * b, [plen + 100] * b), iters=20)
        rows.append({"kind": "decode step (graph)", "rows": b, "kv_tokens": plen + 100, "ms": t * 1e3})
        print(f"decode step {b:>3} rows, kv {plen + 100}: {t * 1e3:6.2f} ms", flush=True)
    out["prefill_decode"] = rows


def serve(engine, pixels, concurrency, images, label, out_rows, save=None, **config) -> dict:
    for k, v in config.items():
        setattr(engine.config, k, v)
    r = asyncio.run(drive(engine, pixels, images, concurrency, ["caption"], 256))
    r.update(label=label, concurrency=concurrency, **config)
    out_rows.append(r)
    if save is not None:
        save()
    print(f"serve {label:<34} c={concurrency:<3} {r['images']:>4} img {r['images_per_s']:6.3f} img/s "
          f"ttft p50 {r['ttft_s_median']:6.2f}s p90 {r['ttft_s_p90']:6.2f}s "
          f"p50 after first wave {r['ttft_s_median_after_first_wave'] or float('nan'):6.2f}s", flush=True)
    return r


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--images-per-client", type=float, default=2.0)
    p.add_argument("--out", default="bench/results/serve_profile.json")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("needs a CUDA GPU", file=sys.stderr)
        return 2
    out: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                 "cudnn": torch.backends.cudnn.version()}
    dest = result_path(args.out)

    def save():   # after every section: a run cut short keeps what it measured
        dest.write_text(json.dumps(out, indent=2))
    peak = matmul_peak()
    out["matmul_peak_tflops"] = peak / 1e12
    print(f"{out['device']} torch {out['torch']} cudnn {out['cudnn']}: bf16 matmul {peak / 1e12:.0f} TFLOP/s", flush=True)
    t0 = time.perf_counter()
    attention_backends(out)
    save()
    model, cfg = build_model("none")
    vision_batches(model, cfg, out, (1, 2, 4, 8, 16))
    save()
    engine = Engine(model, IdTokenizer(), EngineConfig(max_batch=128, slot_len=2048, max_waiting=10_000)).start()
    engine.decoder.warm_up(2048)
    prefill_and_decode(model, engine, cfg, out)
    save()
    pixels = torch.randn(3, cfg.vision.image_size, cfg.vision.image_size).pin_memory()
    asyncio.run(drive(engine, pixels, 2, 2, ["caption"], 8))
    print(f"micro-benchmarks done at {time.perf_counter() - t0:.0f}s", flush=True)

    # phases, synchronised: where one round's time goes at concurrency 64
    engine.clock.enabled = True
    engine.clock.reset()
    t = time.perf_counter()
    asyncio.run(drive(engine, pixels, 64, 64, ["caption"], 256))
    wall = time.perf_counter() - t
    engine.clock.enabled = False
    phases = engine.clock.report()
    out["phases_c64"] = {"wall_s": wall, "phases": phases}
    print(f"phases at c=64, 64 images, {wall:.1f}s wall (synchronised):", flush=True)
    for name, v in phases.items():
        print(f"  {name:<16} {v['seconds']:7.2f}s {v['calls']:>6} calls {v['seconds'] / max(v['calls'], 1) * 1e3:8.2f} ms/call",
              flush=True)
    save()

    runs: list = []
    out["serve"] = runs
    n64 = int(64 * args.images_per_client)
    serve(engine, pixels, 64, n64, "unbounded admission (before)", runs, save, round_images=10**6, round_tokens=10**9)
    for ri in (4, 8):
        serve(engine, pixels, 64, n64, f"round_images={ri}", runs, save, round_images=ri, round_tokens=16384)
    serve(engine, pixels, 128, 192, "round_images=8", runs, save, round_images=8, round_tokens=16384)
    engine.stop()
    fl = flops_per_request(cfg, len(prompt("caption")) + cfg.n_vision_embeds - 3, 256)
    out["flops_per_image"] = fl
    save()
    print(f"wrote {dest} after {time.perf_counter() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
