"""GPU check of the vlmserve model core at full GLM-4V-9B size (random bf16 weights, no checkpoint).

Run from the repo root on a CUDA machine:  PYTHONPATH=inference python3 bench/gpu_model_check.py
Prints a table and writes bench/results/gpu_model_check.json (and $OUT/gpu_model_check.json when
$OUT is set). Measures: build + random init time, peak memory, time to first token (vision +
prefill) for one 1120x1120 image, decode tokens/s over 64 new tokens, a batch of 4, the vision
dtype rule on GPU, and float32/bf16 parity of the tiny golden fixture on the GPU.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
import traceback
from pathlib import Path

import torch

from vlmserve.config import glm4v_9b
from vlmserve.generate import generate
from vlmserve.gpu_timing import capture, sync_time
from vlmserve.model import GLM4V
from vlmserve.weights import dtype_for, init_random, load_model

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "inference" / "tests" / "data" / "glm4v-tiny-a"
H100_BF16_PEAK_TFLOPS = 989.0   # dense, SXM


def gib(n_bytes: int) -> float:
    return n_bytes / 2**30


def model_flops(cfg, prompt_len: int) -> dict:
    """Matmul FLOPs (2 per multiply-add) of vision and prefill for one image prompt."""
    v = cfg.vision
    n = v.grid ** 2 + 1
    vit_params = v.num_hidden_layers * (4 * v.hidden_size ** 2 + 2 * v.hidden_size * v.intermediate_size)
    vision = 2 * n * vit_params + v.num_hidden_layers * 4 * n * n * v.hidden_size
    conv_and_glu = 2 * v.n_image_tokens * (4 * v.hidden_size * cfg.hidden_size + cfg.hidden_size ** 2
                                           + 3 * cfg.hidden_size * cfg.ffn_hidden_size)
    L = prompt_len
    qkv = cfg.hidden_size * (cfg.num_attention_heads + 2 * cfg.n_kv_heads) * cfg.head_dim
    layer = qkv + cfg.hidden_size ** 2 + 3 * cfg.hidden_size * cfg.ffn_hidden_size
    prefill = 2 * L * cfg.num_layers * layer + cfg.num_layers * 2 * L * L * cfg.num_attention_heads * cfg.head_dim
    prefill += 2 * cfg.hidden_size * cfg.padded_vocab_size          # last position only
    return {"vision": vision + conv_and_glu, "prefill": prefill}


def prompt(cfg, batch: int, n_text: int = 12) -> torch.Tensor:
    s = {"gmask": cfg.boi_token_id - 8, "sop": cfg.boi_token_id - 6, "user": cfg.boi_token_id - 3,
         "assistant": cfg.boi_token_id - 2}
    g = torch.Generator().manual_seed(0)
    high = min(100000, cfg.pad_token_id)             # ordinary text ids
    text = torch.randint(high // 100, high, (batch, n_text), generator=g)
    head = torch.tensor([s["gmask"], s["sop"], s["user"], 198, cfg.boi_token_id, cfg.pad_token_id, cfg.eoi_token_id])
    tail = torch.tensor([s["assistant"]])
    return torch.cat([head.expand(batch, -1), text, tail.expand(batch, -1)], dim=1)


def static_decode(model, ids, pixels, new_tokens: int, use_graph: bool = True):
    """Greedy decode through StaticKVCache, one step captured as a CUDA graph and replayed: shows
    that forward_embeds has no data-dependent shapes and what decode costs without Python launch
    overhead (the serving engine does the same with its own backend). -> (ids [B, n], ms per step)."""
    from vlmserve.attention import StaticKVCache
    with torch.inference_mode():
        hidden, positions, dyn = model.prefill(ids.to(pixels.device), pixels)
        cache = StaticKVCache.from_dynamic(dyn, max_len=positions.shape[1] + new_tokens + 8)
        start = int(cache.pos)
        first = model.logits(hidden[:, -1]).argmax(-1)
        cur_ids, cur_pos = first[:, None].clone(), positions[:, -1:] + 1

        def step():
            h = model.forward_embeds(model.transformer.embedding(cur_ids), cur_pos, cache)
            return model.logits(h[:, -1])

        run = step
        if use_graph:
            graph, out = capture(step)
            run = lambda: (graph.replay(), out)[1]  # noqa: E731
        cache.pos.fill_(start)
        out_ids = [first]
        t0 = sync_time() if use_graph else time.perf_counter()
        for _ in range(new_tokens - 1):
            nxt = run().argmax(-1)
            out_ids.append(nxt)
            cur_ids.copy_(nxt[:, None])
            cur_pos += 1
        t1 = sync_time() if use_graph else time.perf_counter()
    return torch.stack(out_ids, 1).tolist(), 1000 * (t1 - t0) / (new_tokens - 1)


def full_size(results: dict, new_tokens: int, batch_sizes: list[int], cfg=None, device="cuda") -> None:
    cfg = cfg or glm4v_9b()
    device = torch.device(device)
    dtype = dtype_for(device, "auto")
    results["auto_dtype"] = str(dtype)
    torch.cuda.reset_peak_memory_stats()
    t0 = sync_time()
    with torch.device("meta"):
        model = GLM4V(cfg)
    model = init_random(model, device, dtype, seed=0)
    results["init_s"] = sync_time() - t0
    n_params = sum(p.numel() for p in model.parameters())
    results["params"] = n_params
    results["weights_gib"] = gib(sum(p.numel() * p.element_size() for p in model.parameters()))
    results["mem_after_init_gib"] = gib(torch.cuda.memory_allocated())

    # the dtype rule on GPU: float32 and float16 images into a bfloat16 tower
    pix32 = torch.randn(1, 3, cfg.vision.image_size, cfg.vision.image_size, device=device)
    rule = {}
    for name, pix in (("float32", pix32), ("float16", pix32.half()), ("float64_cpu", pix32.double().cpu())):
        with torch.inference_mode():
            out = model.encode_images(pix)
        rule[name] = {"ok": out.dtype == dtype and out.device.type == "cuda", "out_dtype": str(out.dtype),
                      "shape": list(out.shape), "finite": bool(torch.isfinite(out).all())}
    try:
        with torch.inference_mode():
            model.vision(pix32.half())
        rule["uncast_fp16_into_bf16_tower"] = "no error (unexpected)"
    except RuntimeError as e:
        rule["uncast_fp16_into_bf16_tower"] = f"RuntimeError as in the official demo: {str(e)[:80]}"
    results["dtype_rule"] = rule

    flops = model_flops(cfg, prompt(cfg, 1).shape[1] + cfg.n_vision_embeds - 3)
    results["flops_vision_T"] = flops["vision"] / 1e12
    results["flops_prefill_T"] = flops["prefill"] / 1e12
    for b in batch_sizes:
        ids = prompt(cfg, b)
        pixels = torch.randn(b, 3, cfg.vision.image_size, cfg.vision.image_size, device=device)
        r = {}
        torch.cuda.reset_peak_memory_stats()
        t0 = sync_time()
        generate(model, ids, pixels, max_new_tokens=4, eos_ids=())          # warm-up (cuDNN/cuBLAS choices)
        r["cold_4_tokens_s"] = sync_time() - t0
        t0 = sync_time()
        with torch.inference_mode():
            vis = model.encode_images(pixels)
        r["vision_s"] = sync_time() - t0
        del vis
        t0 = sync_time()
        g1 = generate(model, ids, pixels, max_new_tokens=1, eos_ids=())
        r["ttft_s"] = sync_time() - t0
        t0 = sync_time()
        g = generate(model, ids, pixels, max_new_tokens=new_tokens, eos_ids=())
        total = sync_time() - t0
        assert all(len(row) == new_tokens for row in g.ids) and g1.ids[0][0] == g.ids[0][0]
        r["total_s"] = total
        r["decode_step_ms"] = 1000 * (total - r["ttft_s"]) / (new_tokens - 1)
        r["decode_tokens_per_s_per_seq"] = (new_tokens - 1) / (total - r["ttft_s"])
        r["decode_tokens_per_s"] = b * r["decode_tokens_per_s_per_seq"]
        r["images_per_s"] = b / total
        r["ttft_tflops"] = b * (flops["vision"] + flops["prefill"]) / r["ttft_s"] / 1e12
        r["ttft_fraction_of_h100_peak"] = r["ttft_tflops"] / H100_BF16_PEAK_TFLOPS
        r["peak_mem_gib"] = gib(torch.cuda.max_memory_allocated())
        try:
            graph_ids, r["graph_decode_step_ms"] = static_decode(model, ids, pixels, new_tokens,
                                                                 use_graph=device.type == "cuda")
            r["graph_decode_tokens_per_s"] = 1000 * b / r["graph_decode_step_ms"]
            r["graph_ids_equal_eager"] = sum(a == c for x, y in zip(graph_ids, g.ids) for a, c in zip(x, y)) / (b * new_tokens)
        except Exception:  # noqa: BLE001 - report, keep the eager numbers
            r["graph_error"] = traceback.format_exc()
            print(r["graph_error"], flush=True)
        results[f"batch_{b}"] = r
        print(f"  batch {b}: done ({total:.2f} s)", flush=True)


def fixture_on_gpu(results: dict) -> None:
    from safetensors.torch import load_file
    inp = load_file(FIXTURE / "inputs.safetensors", device="cuda")
    exp = load_file(FIXTURE / "expected.safetensors")
    # cuDNN convolutions default to TF32 on Ampere+; the float32 comparison wants real float32
    torch.backends.cudnn.allow_tf32 = False
    out = {}
    for name in ("float32", "bfloat16", "float16"):
        model, _ = load_model(FIXTURE, "cuda", name)
        trace = {}
        with torch.inference_mode():
            logits = model(inp["input_ids"], inp["pixel_values"], trace=trace)
        g = generate(model, inp["input_ids"], inp["pixel_values"], max_new_tokens=8, eos_ids=())
        out[name] = {"logits_max_abs": (logits.float().cpu() - exp["logits"]).abs().max().item(),
                     "vision_max_abs": (trace["vision_embeds"].float().cpu() - exp["vision_embeds"]).abs().max().item(),
                     "positions_equal": bool(torch.equal(trace["position_ids"].cpu(), exp["position_ids"])),
                     "greedy_equal": g.ids == exp["greedy_ids"].tolist()}
    torch.backends.cudnn.allow_tf32 = True
    results["fixture_a_on_gpu"] = out


def table(results: dict) -> str:
    rows = [("device", results.get("device")), ("torch / triton", f"{results.get('torch')} / {results.get('triton')}"),
            ("auto dtype", results.get("auto_dtype")), ("parameters", f"{results.get('params', 0):,}"),
            ("build + random init (s)", results.get("init_s")), ("weights (GiB)", results.get("weights_gib")),
            ("vision FLOPs / image (T)", results.get("flops_vision_T")),
            ("prefill FLOPs / prompt (T)", results.get("flops_prefill_T"))]
    for key in sorted(k for k in results if k.startswith("batch_")):
        r = results[key]
        b = key.split("_")[1]
        rows += [(f"[b={b}] vision encode (s)", r["vision_s"]), (f"[b={b}] time to first token (s)", r["ttft_s"]),
                 (f"[b={b}] TTFT TFLOP/s (fraction of 989)", f"{r['ttft_tflops']:.0f} ({r['ttft_fraction_of_h100_peak']:.0%})"),
                 (f"[b={b}] decode step (ms)", r["decode_step_ms"]),
                 (f"[b={b}] decode tokens/s (all rows)", r["decode_tokens_per_s"]),
                 (f"[b={b}] images/s (TTFT + 64 tokens)", r["images_per_s"]),
                 (f"[b={b}] CUDA-graph decode step (ms)", r.get("graph_decode_step_ms")),
                 (f"[b={b}] CUDA-graph decode tokens/s (all rows)", r.get("graph_decode_tokens_per_s")),
                 (f"[b={b}] CUDA-graph ids equal eager (fraction)", r.get("graph_ids_equal_eager")),
                 (f"[b={b}] peak memory (GiB)", r["peak_mem_gib"])]
    rule = results.get("dtype_rule", {})
    rows.append(("dtype rule (fp32/fp16/fp64-cpu image -> bf16 tower)",
                 all(v["ok"] and v["finite"] for k, v in rule.items() if isinstance(v, dict)) if rule else None))
    for name, r in results.get("fixture_a_on_gpu", {}).items():
        rows.append((f"fixture A on GPU {name}: max|dlogit|, greedy equal",
                     f"{r['logits_max_abs']:.2e}, {r['greedy_equal']}"))
    for k in ("error_full_size", "error_fixture"):
        if k in results:
            rows.append((k, results[k].splitlines()[-1]))
    width = max(len(r[0]) for r in rows)
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)  # noqa: E731
    return "\n".join(f"{name:<{width}}  {fmt(value)}" for name, value in rows)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--batch", type=int, nargs="*", default=[1, 4])
    ap.add_argument("--fixture-only", action="store_true", help="only the tiny golden fixture's parity on the GPU")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("needs a CUDA GPU")
    try:
        import triton
        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "triton": triton_version,
               "cuda": torch.version.cuda, "python": platform.python_version(), "new_tokens": args.new_tokens}
    print(f"torch {torch.__version__}, triton {triton_version}, CUDA {torch.version.cuda}, {results['device']}", flush=True)
    try:
        fixture_on_gpu(results)
    except Exception:  # noqa: BLE001 - keep measuring; the error goes into the results
        results["error_fixture"] = traceback.format_exc()
        print(results["error_fixture"], flush=True)
    if args.fixture_only:
        print(json.dumps(results.get("fixture_a_on_gpu"), indent=1), flush=True)
    else:
        try:
            full_size(results, args.new_tokens, args.batch)
        except Exception:  # noqa: BLE001
            results["error_full_size"] = traceback.format_exc()
            print(results["error_full_size"], flush=True)
        print(table(results))
    text = json.dumps(results, indent=2)
    out = ROOT / "bench" / "results" / ("gpu_model_check_fixture.json" if args.fixture_only else "gpu_model_check.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], out.name).write_text(text)
    return 0 if not any(k.startswith("error") for k in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
