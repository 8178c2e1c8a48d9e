"""Serving throughput of the vlmserve engine on full-size GLM-4V-9B (random weights made on the GPU).

Caption task: one 1120x1120 image, a short prompt, 256 new tokens forced (eos ignored). Measures
images/s and generated tokens/s at several concurrencies, the one-request-at-a-time baseline in the
same run, time to first token at concurrency 1, three tasks per image against one, model FLOPs per
image counted from the shapes, the achieved fraction of the GPU's measured bf16 matmul peak, and
peak GPU memory at each concurrency.

The GPU machine has no fastapi/uvicorn, so the engine is driven in-process by concurrent asyncio
clients through the same `submit` API the HTTP server uses (no HTTP/JSON/base64 cost included).
The prompt is built from the real GLM-4 special ids; text tokens are fixed ids (no real vocabulary
file is available), detokenized by a stand-in that prints ids.

    PYTHONPATH=inference python bench/serve_throughput.py [--quant none|nf4|fp8] [--concurrency 1 8 32 64]

A new request's first token against throughput, for several prefill-round sizes (new images per round):

    PYTHONPATH=inference python bench/serve_throughput.py --round-images 2 4 8 [--ttft-concurrency 64]

bf16 and FP8 side by side in one run (images/s at each concurrency, time to first token at 64, FP8's
error against bf16 on the same weights):

    PYTHONPATH=inference python bench/serve_throughput.py --compare [--compare-concurrency 64 128]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path

import torch

from vlmserve.config import glm4v_9b
from vlmserve.engine import Engine, EngineConfig, GenerationRequest, submit
from vlmserve.engine.kv_cache import decode_attention_choice
from vlmserve.engine.memory_plan import SMALL_CARD, small_card_config
from vlmserve.model import GLM4V
from vlmserve.vision import MLP
from vlmserve.weights import init_random, place_embeddings

from result_path import result_path

# The small card's slots (an image's 1,602 vectors, the prompt and 256 answer tokens fit) for every run, so that runs on
# big cards and on the 16 GiB budget hold the same number of sequences per GiB of KV cache.
SLOT_LEN = SMALL_CARD["slot_len"]

GMASK, SOP, USER, ASSISTANT, BOI, PLACEHOLDER, EOI = 151331, 151333, 151336, 151337, 151339, 151329, 151340
NEWLINE = 198
TASK_TEXT = {  # fixed ordinary-token ids standing in for three task prompts
    "caption": [74198, 419, 2168, 13],                        # "Describe this image."
    "ocr": [3838, 1467, 374, 5326, 304, 419, 2168, 30],
    "classify": [3872, 419, 264, 6548, 11, 264, 2197, 11, 264, 9487, 30],
}


class IdTokenizer:
    """Stand-in detokenizer (no real vocabulary here): one short string per id."""
    eos_ids = (151329, 151336, 151338)

    def decode(self, ids) -> str:
        return "".join(f" {i}" for i in ids)


def prompt(task: str) -> list[int]:
    return [GMASK, SOP, USER, NEWLINE, BOI, PLACEHOLDER, EOI, *TASK_TEXT[task], ASSISTANT]


# ---- FLOPs counted from the shapes (multiply-add = 2 FLOPs) ---------------------------------------
def flops_per_request(cfg, prompt_len: int, new_tokens: int, with_vision: bool = True) -> dict:
    v = cfg.vision
    n = v.grid ** 2 + 1
    d, ff = v.hidden_size, v.intermediate_size
    vis_layer = 2 * n * (d * 3 * d + d * d + 2 * d * ff) + 4 * n * n * d
    img = v.n_image_tokens
    H, F = cfg.hidden_size, cfg.ffn_hidden_size
    vision = (v.num_hidden_layers * vis_layer
              + 2 * v.grid ** 2 * 3 * v.patch_size ** 2 * d                 # patch embedding
              + 2 * img * 4 * d * H                                          # 2x2 conv
              + 2 * img * (H * H + 3 * H * F))                              # GLU projector
    q = cfg.num_attention_heads * cfg.head_dim
    kv = cfg.n_kv_heads * cfg.head_dim
    lin = H * (q + 2 * kv) + q * H + H * 2 * F + F * H                      # per token per layer
    logits = 2 * H * cfg.padded_vocab_size

    def decoder(tokens: int, context_before: int) -> float:
        attn = 4 * q * (tokens * context_before + tokens * (tokens + 1) / 2)   # causal QK^T and PV
        return cfg.num_layers * (2 * tokens * lin + attn)

    prefill = decoder(prompt_len, 0) + logits
    decode = sum(decoder(1, prompt_len + t) + logits for t in range(new_tokens - 1))
    return {"vision": vision if with_vision else 0.0, "prefill": prefill, "decode": decode,
            "total": (vision if with_vision else 0.0) + prefill + decode}


def matmul_peak() -> float:
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(20):
        a @ b
    torch.cuda.synchronize()
    return 20 * 2 * 8192 ** 3 / (time.perf_counter() - t)


# ---- model ---------------------------------------------------------------------------------------
def build_model(quant: str):
    cfg = glm4v_9b()
    with torch.device("meta"):
        model = GLM4V(cfg)
    model = init_random(model, "cuda", torch.bfloat16, seed=0)
    if quant != "none":
        quantize_linears(model, quant)
    place_embeddings(model, quant)  # where the loader puts the table for this quant
    return model, cfg


def quantize_linears(model, quant: str) -> None:
    """Replaces the policy's linear layers in place, as the loader does with --quant."""
    if quant == "nf4":
        from vlmserve.quant.linear import NF4Linear as Q
        from vlmserve.quant.policy import should_quantize
    elif quant == "fp8":
        from vlmserve.quant.fp8 import FP8Linear as Q
        from vlmserve.quant.fp8 import should_quantize_fp8 as should_quantize
    else:
        raise ValueError(quant)
    for name, mod in list(model.named_modules()):
        if isinstance(mod, torch.nn.Linear) and should_quantize(f"{name}.weight"):
            parent, _, child = name.rpartition(".")
            q = Q.from_weight(mod.weight.data, mod.bias.data if mod.bias is not None else None,
                              compute_dtype=torch.bfloat16)
            setattr(model.get_submodule(parent), child, q)
            del mod
    torch.cuda.empty_cache()


# ---- load generation -----------------------------------------------------------------------------
async def drive(engine: Engine, pixels: torch.Tensor, n_images: int, concurrency: int, tasks: list[str],
                new_tokens: int) -> dict:
    """`concurrency` clients, each sending the tasks of one image together (as the pipeline does)."""
    next_image = 0
    ttfts, tokens = [], 0        # (image index, seconds to first token)

    async def one(task: str, digest: str, index: int):
        nonlocal tokens
        t0 = time.perf_counter()
        req = GenerationRequest(request_id=uuid.uuid4().hex, prompt_ids=prompt(task), pixel_values=pixels,
                                image_digest=digest, max_tokens=new_tokens, ignore_eos=True)
        first = None
        async for out in submit(engine, req):
            if first is None and out.token_ids:
                first = time.perf_counter() - t0
            if out.finished:
                if out.error:
                    raise RuntimeError(out.error)
                tokens += out.completion_tokens
        ttfts.append((index, first))

    async def client():
        nonlocal next_image
        while next_image < n_images:
            index = next_image
            next_image += 1
            digest = uuid.uuid4().hex  # every image distinct: no reuse across images
            await asyncio.gather(*(one(t, digest, index) for t in tasks))

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    wall = time.perf_counter() - t
    every = [s for _, s in ttfts]
    # After the first wave: all clients start together, so the first `concurrency` images queue behind
    # each other in a way a steady stream does not.
    later = [s for i, s in ttfts if i >= concurrency]
    return {"images": n_images, "seconds": wall, "images_per_s": n_images / wall, "tokens_per_s": tokens / wall,
            "ttft_s_median": _quantile(every, 0.5), "ttft_s_p90": _quantile(every, 0.9),
            "ttft_s_median_after_first_wave": _quantile(later, 0.5) if later else None,
            "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30}


def _quantile(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


# ---- memory budget (a card of --budget-gib) ---------------------------------------------------------
# The engine's own rule (vlmserve.engine.memory_plan.engine_plan) applied to a card of budget_gib: it takes the
# cap, the weights, the activation reserve of these micro-batch sizes, a fragmentation allowance and the caches,
# and sizes the KV cache from the rest. Before it, 2.0 GiB of activations flat ran out of memory in graph capture
# and the warm-up's vision pass (bench/results/serve_nf4_16gib_h200.log: 1.6 GiB of the cap reserved but unusable).
def budget_config(max_batch: int, **over) -> EngineConfig:
    """The engine settings of the budget mode: the engine's own small-card settings (memory_plan.SMALL_CARD)."""
    return small_card_config(EngineConfig(max_batch=max_batch, max_waiting=10_000, **over))


def budget_plan(budget_gib: float, context: int, weights: int, cfg, config: EngineConfig):
    """The memory plan of a budget_gib card holding `weights` bytes of model, for an engine of `config`."""
    from vlmserve.engine.memory_plan import DeviceMemory, engine_plan

    card = DeviceMemory(card_bytes=int(budget_gib * 2**30), context_bytes=context, weights_bytes=weights)
    return engine_plan(cfg, config, torch.bfloat16, card)


def apply_cap(cap: int) -> None:
    """Applied after the model is built: the bench makes bf16 weights and quantizes them on the GPU (the real
    loader quantizes tensor by tensor as it reads them), so only serving runs under the cap."""
    torch.cuda.empty_cache()
    if torch.cuda.memory_reserved() > cap:
        raise SystemExit(f"the weights alone ({torch.cuda.memory_reserved() / 2**30:.2f} GiB) exceed the cap")
    torch.cuda.set_per_process_memory_fraction(cap / torch.cuda.get_device_properties(0).total_memory)


def fp8_few_rows_choices() -> list[dict]:
    """What FP8's decode-sized matmuls ran on, per shape: cuBLAS or a split-K kernel configuration, with every
    candidate's time (quant.triton_fp8 timed them on first use)."""
    try:
        from vlmserve.quant import triton_fp8
    except ImportError:            # no Triton
        return []
    timings = triton_fp8.choice_timings()
    return [{"rows_block": key[0], "n": key[1], "k": key[2], "bias": key[3],
             "chosen": "cublas" if cfg is None else str(cfg),
             "candidates_us": [[c if isinstance(c, str) else str(c), t, err] for c, t, err in timings.get(key, [])]}
            for key, cfg in triton_fp8.chosen().items()]


# ---- bf16 and FP8 side by side ------------------------------------------------------------------------
def compare_main(args) -> int:
    """One run, one GPU: bf16 and FP8 images/s at each --compare-concurrency, TTFT at --ttft-concurrency, and
    FP8's error against bf16 on the same random weights (bench/results/serve_throughput_compare.json)."""
    import copy

    from vlmserve.quant.fp8_error import compare

    dev_name = torch.cuda.get_device_name()
    peak = matmul_peak()
    print(f"{dev_name}: measured bf16 matmul peak {peak / 1e12:.0f} TFLOP/s", flush=True)
    bf16, cfg = build_model("none")
    fp8 = copy.deepcopy(bf16)
    quantize_linears(fp8, "fp8")
    pixels = torch.randn(3, cfg.vision.image_size, cfg.vision.image_size).pin_memory()
    ids = torch.tensor([prompt("caption")], device="cuda")
    px = pixels[None].to("cuda", torch.bfloat16)
    t = time.perf_counter()
    err = compare(bf16, fp8, ids, px, new_tokens=args.error_tokens)
    print(f"FP8 vs bf16, full size, random weights, caption prompt + random image: logits rel err "
          f"{err['logits_rel_err']:.4f}, top-1 agreement {err['top1_agreement']:.4f} over {ids.shape[1] + cfg.n_vision_embeds - 3} "
          f"positions, greedy agreement {err['greedy_agreement']:.3f} of {err['greedy_tokens']} tokens "
          f"({time.perf_counter() - t:.0f}s)", flush=True)
    plen = len(prompt("caption")) + cfg.n_vision_embeds - 3
    fl = flops_per_request(cfg, plen, args.new_tokens)
    results = {"device": dev_name, "matmul_peak_tflops": peak / 1e12, "flops_per_image": fl,
               "new_tokens": args.new_tokens, "prompt_tokens": plen, "fp8_error": err,
               "decode_attention": decode_attention_choice(), "vision_mlp_chunk": MLP.tokens_per_chunk,
               "driver": "in-process engine, concurrent asyncio clients (no HTTP: the GPU machine has no fastapi/uvicorn)",
               "runs": []}
    name = args.out or "bench/results/serve_throughput_compare.json"
    out = result_path(name)
    concurrencies = sorted(set(args.compare_concurrency) | {args.ttft_concurrency})
    for label, model in (("bf16", bf16), ("fp8", fp8)):
        engine = Engine(model, IdTokenizer(), EngineConfig(max_batch=max(concurrencies), slot_len=SLOT_LEN,
                                                           max_waiting=10_000)).start()
        t = time.perf_counter()
        engine.decoder.warm_up(SLOT_LEN)
        asyncio.run(drive(engine, pixels, 2, 2, ["caption"], 8))
        print(f"{label}: {engine.n_slots} slots, warm in {time.perf_counter() - t:.1f}s, "
              f"{torch.cuda.memory_allocated() / 2**30:.1f} GiB allocated", flush=True)
        for c in concurrencies:
            r = asyncio.run(drive(engine, pixels, max(int(c * args.images_per_client), 4), c, ["caption"],
                                  args.new_tokens))
            r.update(model=label, concurrency=c, flop_fraction_of_peak=r["images_per_s"] * fl["total"] / peak,
                     kv_slots=engine.n_slots, round_images=engine.config.round_images)
            results["runs"].append(r)
            print(f"{label:<5} c={c:<4} {r['images']:>4} img {r['seconds']:6.1f}s {r['images_per_s']:6.3f} img/s "
                  f"{r['tokens_per_s']:7.0f} tok/s  ttft p50 {r['ttft_s_median']:6.2f}s p90 {r['ttft_s_p90']:6.2f}s "
                  f"after first wave {r['ttft_s_median_after_first_wave'] or float('nan'):6.2f}s  "
                  f"{r['flop_fraction_of_peak'] * 100:5.1f}% peak  {r['peak_mem_gib']:5.1f} GiB", flush=True)
            out.write_text(json.dumps(results, indent=2))
        engine.stop()
        del engine
        torch.cuda.empty_cache()

    summary = {}
    for label in ("bf16", "fp8"):
        runs = [r for r in results["runs"] if r["model"] == label]
        if not runs:
            continue
        best = max(runs, key=lambda r: r["images_per_s"])
        at = next(r for r in runs if r["concurrency"] == args.ttft_concurrency)
        summary[label] = {"best_images_per_s": best["images_per_s"], "best_concurrency": best["concurrency"],
                          "best_flop_fraction": best["flop_fraction_of_peak"],
                          f"ttft_p50_s_c{args.ttft_concurrency}": at["ttft_s_median"],
                          f"images_per_s_c{args.ttft_concurrency}": at["images_per_s"],
                          f"c{args.ttft_concurrency}_fraction_of_best": at["images_per_s"] / best["images_per_s"]}
    results["summary"] = summary
    results["fp8_few_rows"] = fp8_few_rows_choices()
    for r in results["fp8_few_rows"]:
        times = ", ".join(f"{c}: {t:.1f} us" if t is not None else f"{c}: {err}" for c, t, err in r["candidates_us"])
        print(f"FP8 decode matmul rows<={r['rows_block']} N={r['n']} K={r['k']}: {r['chosen']} ({times})", flush=True)
    out.write_text(json.dumps(results, indent=2))
    c = args.ttft_concurrency
    print("\n| | bf16 | FP8 |\n|---|---|---|")
    rows = [("best images/s", "best_images_per_s", "{:.3f}"), ("at concurrency", "best_concurrency", "{}"),
            ("% of bf16 FLOP peak", "best_flop_fraction", "{:.1%}"),
            (f"TTFT p50 at c={c} (s)", f"ttft_p50_s_c{c}", "{:.2f}"),
            (f"images/s at c={c}", f"images_per_s_c{c}", "{:.3f}"),
            (f"c={c} throughput / best", f"c{c}_fraction_of_best", "{:.1%}")]
    for title, key, fmt in rows:
        print(f"| {title} | " + " | ".join(fmt.format(summary[m][key]) if key in summary.get(m, {}) else "-"
                                            for m in ("bf16", "fp8"))
              + " |")
    print(f"| FP8 logits rel. error / top-1 / greedy agreement | | {err['logits_rel_err']:.4f} / "
          f"{err['top1_agreement']:.3f} / {err['greedy_agreement']:.3f} |")
    print(f"wrote {out}")
    return 0


# ---- the prefill round's size: a new request's wait against throughput ------------------------------------
def rounds_main(engine: Engine, pixels: torch.Tensor, args, fl: dict, peak: float, results: dict, out: Path) -> int:
    """Images/s and time to first token at --ttft-concurrency for each --round-images (new images admitted per
    scheduler round: running sequences get a decode step between rounds, and a request waits for the images of
    its round), one engine, the same weights, one after another: the figures that choose the engine's default."""
    c = args.ttft_concurrency
    default = engine.config.round_images
    results["round_images_default"] = default
    for n in args.round_images:
        engine.config.round_images = n          # read at every admission: no new engine, no new graphs
        r = asyncio.run(drive(engine, pixels, max(int(c * args.images_per_client), 4), c, ["caption"],
                              args.new_tokens))
        r.update(round_images=n, concurrency=c, flop_fraction_of_peak=r["images_per_s"] * fl["total"] / peak)
        results["runs"].append(r)
        out.write_text(json.dumps(results, indent=2))
        print(f"round_images={n:<3} c={c:<4} {r['images']:>4} img {r['seconds']:6.1f}s {r['images_per_s']:6.3f} img/s "
              f"ttft p50 {r['ttft_s_median']:6.2f}s p90 {r['ttft_s_p90']:6.2f}s after first wave "
              f"{r['ttft_s_median_after_first_wave'] or float('nan'):6.2f}s", flush=True)
    engine.config.round_images = default
    engine.stop()
    best = max(r["images_per_s"] for r in results["runs"])
    print("\n| images per round | images/s | of the best | TTFT p50 | p90 | p50 after the first wave |\n"
          "|---|---|---|---|---|---|")
    for r in results["runs"]:
        print(f"| {r['round_images']} | {r['images_per_s']:.3f} | {r['images_per_s'] / best:.1%} | "
              f"{r['ttft_s_median']:.2f} s | {r['ttft_s_p90']:.2f} s | "
              f"{r['ttft_s_median_after_first_wave'] or float('nan'):.2f} s |")
    print(f"wrote {out}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--quant", choices=["none", "nf4", "fp8"], default="none")
    p.add_argument("--compare", action="store_true",
                   help="bf16 and FP8 side by side in one run (--compare-concurrency, --ttft-concurrency)")
    p.add_argument("--compare-concurrency", type=int, nargs="+", default=[64, 128])
    p.add_argument("--ttft-concurrency", type=int, default=64)
    p.add_argument("--round-images", type=int, nargs="+", default=None,
                   help="only: images/s and TTFT at --ttft-concurrency for each of these images-per-round settings "
                        "(bench/results/serve_ttft_rounds.json)")
    p.add_argument("--error-tokens", type=int, default=32, help="greedy steps compared for FP8's error figures")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    p.add_argument("--images-per-client", type=float, default=2.0)
    p.add_argument("--baseline-images", type=int, default=3)
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--three-task-concurrency", type=int, default=32)
    p.add_argument("--out", default=None, help="default: bench/results/serve_throughput[_nf4].json")
    p.add_argument("--budget-gib", type=float, default=None,
                   help="emulate a card of this many GiB: torch's per-process memory fraction capped to it (less the "
                        "CUDA context), the KV cache sized to what the weights leave, smaller prefill micro-batches; "
                        "concurrencies above the KV slots it holds are capped to them")
    args = p.parse_args(argv)
    if args.budget_gib:  # before the first CUDA allocation: a capped pool cannot afford fragmentation
        os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
    if not torch.cuda.is_available():
        print("needs a CUDA GPU", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = True
    if args.compare:
        return compare_main(args)
    dev_name = torch.cuda.get_device_name()
    peak = matmul_peak()
    print(f"{dev_name}: measured bf16 matmul peak {peak / 1e12:.0f} TFLOP/s", flush=True)
    if args.budget_gib:
        from vlmserve.engine.memory_plan import measure_device

        context = measure_device(torch.device("cuda", 0)).context_bytes
    else:
        context = None

    t = time.perf_counter()
    model, cfg = build_model(args.quant)
    print(f"model ({args.quant}) built in {time.perf_counter() - t:.1f}s, "
          f"{torch.cuda.memory_allocated() / 2**30:.1f} GiB", flush=True)
    max_c = max(args.concurrency + [args.three_task_concurrency * 3])
    max_batch = max(64, min(max_c, 96))
    config = EngineConfig(max_batch=max_batch, slot_len=SLOT_LEN, max_waiting=10_000)
    cap = plan = None
    if context is not None:
        from vlmserve.engine.memory_plan import PlanError

        from vlmserve.quant.linear import prepare_nf4

        config = budget_config(max_batch)
        prepare_nf4(model)  # as the engine does before its plan: NF4 layout and scratch settled with the weights
        try:
            plan = budget_plan(args.budget_gib, context, torch.cuda.memory_allocated(), cfg, config)
        except PlanError as e:
            raise SystemExit(f"--budget-gib {args.budget_gib}: {e}") from None
        cap = plan.cap
        apply_cap(cap)
        config = budget_config(max_batch, kv_budget_tokens=plan.kv_budget_tokens)
        print(f"budget {args.budget_gib} GiB card (CUDA context {context / 2**30:.2f} GiB), memory plan:\n"
              f"{plan.table()}", flush=True)
    engine = Engine(model, IdTokenizer(), config).start()
    if cap is not None:
        args.concurrency = sorted({min(c, engine.n_slots) for c in args.concurrency})
        args.three_task_concurrency = min(args.three_task_concurrency, engine.n_slots)
    t = time.perf_counter()
    engine.decoder.warm_up(SLOT_LEN)
    print(f"CUDA graphs: {len(engine.decoder._graphs)} captured in {time.perf_counter() - t:.1f}s "
          f"(slots {engine.n_slots})", flush=True)
    pixels = torch.randn(3, cfg.vision.image_size, cfg.vision.image_size).pin_memory()
    plen = len(prompt("caption")) + cfg.n_vision_embeds - 3
    fl = flops_per_request(cfg, plen, args.new_tokens)
    print(f"model FLOPs per caption request: {fl['total'] / 1e12:.1f} T (vision {fl['vision'] / 1e12:.1f}, "
          f"prefill {fl['prefill'] / 1e12:.1f}, decode {fl['decode'] / 1e12:.1f})", flush=True)

    results = {"device": dev_name, "quant": args.quant, "matmul_peak_tflops": peak / 1e12,
               "decode_attention": decode_attention_choice(), "vision_mlp_chunk": MLP.tokens_per_chunk,
               "round_images": engine.config.round_images,
               "budget_gib": args.budget_gib, "torch_cap_gib": cap / 2**30 if cap else None,
               "kv_slots": engine.n_slots,
               "engine_config": ({k: getattr(config, k) for k in SMALL_CARD} | {"kv_budget_tokens": plan.kv_budget_tokens}
                                 if plan else {}),
               "memory_plan_gib": dict(plan.rows()) if plan else None,
               "flops_per_image": fl, "new_tokens": args.new_tokens, "prompt_tokens": plen,
               "driver": "in-process engine, concurrent asyncio clients (no HTTP: the GPU machine has no fastapi/uvicorn)",
               "runs": []}
    name = args.out or (f"bench/results/serve_throughput{'' if args.quant == 'none' else '_' + args.quant}"
                        f"{f'_{args.budget_gib:g}gib' if args.budget_gib else ''}.json")
    if args.round_images:
        name = args.out or f"bench/results/serve_ttft_rounds{'' if args.quant == 'none' else '_' + args.quant}.json"
    out = result_path(name)
    asyncio.run(drive(engine, pixels, 2, 2, ["caption"], 8))   # warm-up: vision, prefill shapes
    if args.round_images:
        return rounds_main(engine, pixels, args, fl, peak, results, out)
    rows = []

    def record(label, conc, tasks, r):
        frac = r["images_per_s"] * (fl["total"] + (len(tasks) - 1) * (fl["total"] - fl["vision"])) / peak
        r.update({"label": label, "concurrency": conc, "tasks": tasks, "flop_fraction_of_peak": frac})
        results["runs"].append(r)
        rows.append(r)
        out.write_text(json.dumps(results, indent=2))  # after every run: a run cut short keeps what it measured
        print(f"{label:<28} c={conc:<3} {r['images']:>4} img {r['seconds']:7.1f}s {r['images_per_s']:7.3f} img/s "
              f"{r['tokens_per_s']:8.0f} tok/s  ttft {r['ttft_s_median']:6.3f}s  {frac * 100:5.1f}% peak  "
              f"{r['peak_mem_gib']:5.1f} GiB", flush=True)

    base = asyncio.run(drive(engine, pixels, args.baseline_images, 1, ["caption"], args.new_tokens))
    record("baseline one-at-a-time", 1, ["caption"], base)
    for c in args.concurrency:
        if c == 1:
            continue
        n = max(int(c * args.images_per_client), 4)
        record("caption", c, ["caption"], asyncio.run(drive(engine, pixels, n, c, ["caption"], args.new_tokens)))
    tc = args.three_task_concurrency
    one = three = None
    if tc > 0:  # 0 skips the three-task comparison
        one = asyncio.run(drive(engine, pixels, 2 * tc, tc, ["caption"], args.new_tokens))
        record("1 task/image (same load)", tc, ["caption"], one)
        three = asyncio.run(drive(engine, pixels, 2 * tc, tc, ["caption", "ocr", "classify"], args.new_tokens))
        record("3 tasks/image", tc, ["caption", "ocr", "classify"], three)

    best = max((r for r in rows if r["tasks"] == ["caption"]), key=lambda r: r["images_per_s"])
    results["summary"] = {
        "baseline_images_per_s": base["images_per_s"], "ttft_c1_s": base["ttft_s_median"],
        "best_images_per_s": best["images_per_s"], "best_concurrency": best["concurrency"],
        "speedup_vs_baseline": best["images_per_s"] / base["images_per_s"],
        "best_flop_fraction": best["flop_fraction_of_peak"],
        "three_tasks_cost_ratio": one["images_per_s"] / three["images_per_s"] if three else None,
        "prefix_cache_hits": engine.metrics.prefix_cache_hits.value,
        "images_encoded": engine.metrics.images_encoded.value,
        "kv_slots": engine.n_slots, "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30,
    }
    s = results["summary"]
    print(f"\nbest {s['best_images_per_s']:.3f} img/s at c={s['best_concurrency']} = {s['speedup_vs_baseline']:.1f}x "
          f"baseline, {s['best_flop_fraction'] * 100:.1f}% of measured peak; 3 tasks cost "
          f"{s['three_tasks_cost_ratio'] or float('nan'):.2f}x one; ttft(c=1) {s['ttft_c1_s']:.3f}s; "
          f"KV slots {engine.n_slots}; peak reserved {torch.cuda.max_memory_reserved() / 2**30:.2f} GiB", flush=True)
    engine.stop()
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
