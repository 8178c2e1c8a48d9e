"""GLM-4V-9B full size, random weights: bf16 vs NF4 memory and speed, side by side.

Run from the repo root on a CUDA machine:
    PYTHONPATH=inference python bench/nf4_memory_speed.py [--batches 1,16,64] [--new-tokens 256] [--modes check,nf4,bf16]

Each mode runs in its own subprocess (so nvidia-smi's per-process total is that mode's alone), and the JSON
is written after each mode, so a run cut short keeps what it measured:
- check: the NF4 GPU paths against the dequantize + F.linear fallback on every layer shape and row count the
  model uses, plain and double-quantized absmax, and every tuning candidate once (inference/tests/test_nf4_gpu.py);
  then the tuned NF4 layer vs bf16 F.linear on the real shapes: CUDA-graph replays with L2 flushed between calls
  (each call streams its weight from HBM, as in a decode step), with every candidate's tuner time;
- build: the model is made on the meta device, then materialized one tensor at a time on the GPU;
  in nf4 mode each linear weight of the default policy is quantized right after it is created and its
  16-bit copy freed (NF4Linear.from_weight defaults: bf16 compute, double-quantized absmax), so 16-bit
  weights of quantized layers are never all resident ("load+quantize");
- batch 1 (the memory target): one 1120x1120 image + a short prompt, 256 greedy tokens with
  vlmserve.generate (eager); torch max allocated over that run and the process total from nvidia-smi;
- the serving engine's path: a slot KV cache sized for exactly the request (prompt + new tokens), vision,
  flash prefill, last-position logits, CUDA-graph decode (engine.DecodeStep): peak allocated per stage;
- speed: time to first token (vision + prefill + first logits, best of 3) and decode tokens/s eager at batch 1;
  decode tokens/s per row from CUDA graphs over all new tokens at every batch (batch > 1: engine path only,
  one image's embeddings repeated per row).
Prints a table and writes bench/results/nf4_memory_speed.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch
from torch import nn

from vlmserve.engine.kv_cache import decode_attention_choice
from vlmserve.gpu_timing import KERNEL_TIMING, graph_time_us, sync_time

GIB = 2**30
PARTIAL = "PARTIAL-RESULT "
IDS = dict(gmask=151331, sop=151333, user=151336, assistant=151337, boi=151339, eot=151329, eoi=151340, nl=198)


def build(mode: str, device: torch.device):
    from vlmserve.config import glm4v_9b
    from vlmserve.model import GLM4V
    from vlmserve.quant.linear import NF4Linear
    from vlmserve.quant.policy import should_quantize
    from vlmserve.weights import place_embeddings

    cfg = glm4v_9b()
    dtype = torch.bfloat16
    with torch.device("meta"):
        model = GLM4V(cfg)
    g = torch.Generator(device=device).manual_seed(0)

    def fill(name: str, shape) -> torch.Tensor:
        t = torch.empty(shape, dtype=dtype, device=device)
        if name.endswith("layernorm.weight") or name.endswith("norm1.weight"):
            return t.fill_(1.0)
        if name.endswith(".bias"):
            return t.zero_()
        fan_in = t[0].numel() if t.dim() > 1 else t.shape[-1]
        return t.normal_(0.0, fan_in ** -0.5, generator=g)

    n_quant = 0
    for mod_name, module in list(model.named_modules()):
        if mode == "nf4" and isinstance(module, nn.Linear) and should_quantize(f"{mod_name}.weight"):
            w = fill(f"{mod_name}.weight", module.weight.shape)
            b = fill(f"{mod_name}.bias", module.bias.shape) if module.bias is not None else None
            q = NF4Linear.from_weight(w, b, compute_dtype=dtype)
            del w, b
            parent, _, child = mod_name.rpartition(".")
            setattr(model.get_submodule(parent), child, q)
            n_quant += 1
            continue
        for p_name, p in list(module.named_parameters(recurse=False)):
            if p.is_meta:
                setattr(module, p_name, nn.Parameter(fill(f"{mod_name}.{p_name}", p.shape), requires_grad=False))
    model.transformer.rotary.build(device)
    left = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if left:
        raise RuntimeError(f"still on meta: {left[:5]}")
    place_embeddings(model, "nf4" if mode == "nf4" else "none")  # where the loader puts the table for this mode
    return model.eval().requires_grad_(False), cfg, n_quant


def prompt(batch: int, device) -> torch.Tensor:
    text = [1000 + i for i in range(8)]  # "Describe this image."-sized question
    row = [IDS["gmask"], IDS["sop"], IDS["user"], IDS["nl"], IDS["boi"], IDS["eot"], IDS["eoi"], *text, IDS["assistant"]]
    return torch.tensor([row] * batch, dtype=torch.long, device=device)


def nvidia_smi_process_mib() -> float | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.strip().splitlines():
        pid, mib = [s.strip() for s in line.split(",")]
        if int(pid) == os.getpid():
            return float(mib)
    return None


@torch.inference_mode()
def ttft(model, ids, pixels) -> float:
    t0 = sync_time()
    hidden, _, _ = model.prefill(ids, pixels)
    model.logits(hidden[:, -1]).argmax(-1)
    return sync_time() - t0


@torch.inference_mode()
def stage_peaks(model, ids, pixels) -> dict:
    """Peak memory above the resident weights, per stage (where the activation memory goes)."""
    out = {}
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    vis = model.encode_images(pixels)
    torch.cuda.synchronize()
    out["vision_extra_gib"] = (torch.cuda.max_memory_allocated() - base) / GIB
    torch.cuda.reset_peak_memory_stats()
    embeds, positions = model.embed(ids, vis, None)
    hidden = model.forward_embeds(embeds, positions, model.new_cache())
    model.logits(hidden[:, -1])
    torch.cuda.synchronize()
    out["prefill_extra_gib"] = (torch.cuda.max_memory_allocated() - base) / GIB
    return out


@torch.inference_mode()
def engine_path(model, cfg, ids, pixels, new_tokens: int, steps: int) -> dict:
    """The serving engine's path for `ids`: slot KV cache of exactly prompt + new_tokens per row, vision,
    prefill (flash), logits of the last position only, CUDA-graph decode. Peak allocated per stage."""
    from vlmserve.engine.decode_step import DecodeStep
    from vlmserve.engine.kv_cache import SlotAttention, SlotKVCache

    b = ids.shape[0]
    device = ids.device
    out = {}

    def mark(name: str) -> None:
        torch.cuda.synchronize()
        out[f"engine_{name}_peak_gib"] = torch.cuda.max_memory_allocated() / GIB
        torch.cuda.reset_peak_memory_stats()

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    out["engine_base_gib"] = torch.cuda.memory_allocated() / GIB  # weights + anything else still held
    slot_len = ids.shape[1] - 3 + model.n_vision_embeds + new_tokens
    cache = SlotKVCache(cfg.num_layers, b, slot_len, cfg.n_kv_heads, cfg.head_dim, torch.bfloat16, device)
    attn = SlotAttention(cache)
    out["engine_kv_gib"] = (cache.k.numel() + cache.v.numel()) * 2 / GIB
    # one image encoded and its embeddings repeated: the decode rate does not depend on the pixels, and 64
    # separate vision passes would spend the run's time limit on the tower
    vis = model.encode_images(pixels[:1])
    if b > 1:
        vis = vis.expand(b, *vis.shape[1:])
    mark("vision")
    attn.plan_prefill(list(range(b)), [0] * b)
    embeds, positions = model.embed(ids, vis, None)
    del vis
    hidden = model.forward_embeds(embeds, positions, attn)
    nxt = model.logits(hidden[:, -1]).argmax(-1).tolist()
    del hidden
    mark("prefill")
    step = DecodeStep(model, attn, b, slot_len, device, use_graphs=True)
    length, pos = embeds.shape[1], int(positions[0, -1])
    del embeds, positions

    def run(i: int):
        nonlocal nxt
        logits = step.run(nxt, [pos + 1 + i] * b, [length + i] * b)
        nxt = logits.argmax(-1).tolist()

    for i in range(3):  # capture + warm
        run(i)
    t0 = sync_time()
    for i in range(3, 3 + steps):
        run(i)
    out["decode_tps_graph"] = steps * 1.0 / (sync_time() - t0)  # per row
    out["decode_steps_timed"] = steps
    out["engine_held_after_decode_gib"] = torch.cuda.memory_allocated() / GIB  # + KV cache + graph pool
    mark("decode")
    out["peak_allocated_engine_gib"] = max(out[f"engine_{s}_peak_gib"] for s in ("vision", "prefill", "decode"))
    return out


@torch.inference_mode()
def run_check() -> dict:
    """Every GPU path against the fallback (dequantize to the compute dtype + F.linear) on every layer shape and
    row count the model uses (inference/tests/test_nf4_gpu.py), then per-layer speed: NF4 (tuned) vs bf16 cuBLAS,
    GPU time from CUDA-graph replays with L2 flushed between calls (each call streams its weight from HBM, as in a
    decode step), and every candidate's time from the tuner."""
    import torch.nn.functional as F

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "inference", "tests"))
    from test_nf4_gpu import LAYERS, gpu_cases

    from vlmserve.quant import triton_nf4 as T
    from vlmserve.quant.linear import NF4Linear

    bf = torch.bfloat16
    speed = []
    dev = torch.device("cuda")
    for name, n, k, has_bias, ms in LAYERS:
        ms = tuple(m for m in ms if m not in (7, 96, 200))  # a few fewer than the check, for time
        w16 = torch.randn(n, k, device="cuda", dtype=bf) * 0.02
        b16 = torch.randn(n, device="cuda", dtype=bf) * 0.1 if has_bias else None
        lin = NF4Linear.from_weight(w16, b16, compute_dtype=bf)
        for m in ms:
            x = torch.randn(m, k, device="cuda", dtype=bf)
            lin(x)  # tune
            key = T.tuning_key(m, lin._operand(), bf, has_bias)
            cfg = T.tuned_configs().get(key)
            t16 = graph_time_us(lambda: F.linear(x, w16, b16), **KERNEL_TIMING, device=dev)
            t4 = graph_time_us(lambda: lin(x), **KERNEL_TIMING, device=dev)
            cands = [(str(c), t, e) for c, t, e in T.tuning_timings().get(key, [])]
            gbps = (n * k / 2 + n * k / 64) / (t4 * 1e-6) / 1e9
            speed.append(dict(shape=name, M=m, N=n, K=k, bf16_us=t16, nf4_us=t4, speedup=t16 / t4, config=str(cfg),
                              nf4_weight_GBps=gbps, candidates_us=cands))
            print(f"{name:13s} M={m:5d}  bf16 {t16:8.1f} us  nf4 {t4:8.1f} us  x{t16 / t4:5.2f}  "
                  f"{gbps:6.0f} GB/s  {cfg}", file=sys.stderr, flush=True)
            print("      candidates: " + ", ".join(
                f"{c.block_m}x{c.block_n}r{c.r}w{c.num_warps}v{c.waves}{'A' if c.w_is_a else 'B'}{c.chunk_mib or ''}="
                + (f"{t:.0f}" if t is not None else "x") for c, t, _ in T.tuning_timings().get(key, [])),
                  file=sys.stderr, flush=True)
        del w16, lin
        torch.cuda.empty_cache()
    t0 = time.perf_counter()
    rows = gpu_cases(log=lambda s: print(s, file=sys.stderr, flush=True))
    bad = [r for r in rows if r["ok"] is not True]
    print(f"check: {len(rows)} runs in {time.perf_counter() - t0:.0f}s, {sum(r['ok'] is False for r in rows)} wrong, "
          f"{sum(r['ok'] is None for r in rows)} not compiled", file=sys.stderr, flush=True)
    for r in bad:
        print("  ", r, file=sys.stderr)

    return dict(mode="check", ok=not bad, runs=rows, speed=speed)


def run_mode(mode: str, batches: list[int], new_tokens: int) -> dict:
    from vlmserve.generate import generate

    device = torch.device("cuda")
    torch.cuda.init()
    t0 = sync_time()
    model, cfg, n_quant = build(mode, device)
    load_s = sync_time() - t0
    table = model.transformer.embedding
    host = table.word_embeddings.weight
    res = dict(mode=mode, quantized_linears=n_quant, load_quantize_s=load_s,
               weights_gib=torch.cuda.memory_allocated() / GIB,
               host_embeddings_gib=host.numel() * host.element_size() / GIB if table.on_host else 0.0,
               batches={})
    size = cfg.vision.image_size
    for b in batches:
        ids = prompt(b, device)
        pixels = torch.randn(b, 3, size, size, device=device, dtype=torch.bfloat16)
        row = {}
        if b == 1:  # the memory target and the lone request's first token: generate (eager), as the CLI runs it
            generate(model, ids, pixels, max_new_tokens=2, eos_ids=[])  # compile / tune kernels
            torch.cuda.synchronize()
            held = torch.cuda.memory_allocated() / GIB
            torch.cuda.reset_peak_memory_stats()
            t_first = min(ttft(model, ids, pixels) for _ in range(3))
            t0 = sync_time()
            gen = generate(model, ids, pixels, max_new_tokens=new_tokens, eos_ids=[])
            total = sync_time() - t0
            row.update(ttft_s=t_first, new_tokens=len(gen.ids[0]), allocated_after_warmup_gib=held,
                       decode_tps_eager=(len(gen.ids[0]) - 1) / max(total - t_first, 1e-9),
                       peak_allocated_gib=torch.cuda.max_memory_allocated() / GIB,
                       peak_reserved_gib=torch.cuda.max_memory_reserved() / GIB)
            row.update(stage_peaks(model, ids, pixels))
        try:
            # every batch decodes all new_tokens (the KV cache grows to prompt + new_tokens), from CUDA graphs
            row.update(engine_path(model, cfg, ids, pixels, new_tokens, new_tokens - 4))
        except Exception as exc:  # the engine's decode step is another team's code: report, don't die
            row["decode_tps_graph"] = None
            row["graph_error"] = f"{type(exc).__name__}: {exc}"[:300]
        smi = nvidia_smi_process_mib()  # the process total after both paths (the caching allocator's high mark)
        row["nvidia_smi_process_gib"] = smi / 1024 if smi is not None else None
        row["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / GIB
        res["batches"][str(b)] = row
        print(mode, b, row, file=sys.stderr, flush=True)
        # machine-readable too: a mode cut off by --mode-timeout keeps the batches it finished
        print(PARTIAL + json.dumps(dict(res, batches={str(b): row})), file=sys.stderr, flush=True)
        del ids, pixels
        torch.cuda.empty_cache()
    return res


def partial_result(stderr: str) -> dict:
    """What a cut-off child reported batch by batch (its PARTIAL lines), merged into one mode result."""
    res: dict = {}
    for line in stderr.splitlines():
        if line.startswith(PARTIAL):
            try:
                part = json.loads(line[len(PARTIAL):])
            except ValueError:
                continue  # a line cut mid-way
            batches = {**res.get("batches", {}), **part.get("batches", {})}
            res.update(part)
            res["batches"] = batches
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="1,16,64")
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--modes", default="check,nf4,bf16")
    ap.add_argument("--out", default="bench/results/nf4_memory_speed.json")
    ap.add_argument("--mode-timeout", type=float, default=None, help="seconds per mode before it is cut off")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    if args.child:
        res = run_check() if args.child == "check" else run_mode(args.child, batches, args.new_tokens)
        print(json.dumps(res))
        return 0
    if not torch.cuda.is_available():
        print("needs a CUDA GPU", file=sys.stderr)
        return 2
    results = {}
    for mode in args.modes.split(","):
        try:
            proc = subprocess.run([sys.executable, __file__, "--child", mode, "--batches", args.batches,
                                   "--new-tokens", str(args.new_tokens)], capture_output=True, text=True,
                                  timeout=args.mode_timeout)
        except subprocess.TimeoutExpired as exc:
            err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
            sys.stderr.write(err[-3000:])
            results[mode] = partial_result(err)
            results[mode]["error"] = f"cut off after {args.mode_timeout} s\n" + err[-2000:]
        else:
            sys.stderr.write(proc.stderr[-6000:])
            if proc.returncode != 0:
                results[mode] = partial_result(proc.stderr)
                results[mode]["error"] = proc.stderr[-2000:]
            else:
                results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:  # after each mode, so a cut-off run keeps what it measured
            json.dump(dict(partial=True, results=results), f, indent=1)
    gpu = torch.cuda.get_device_name()
    if "check" in results and "runs" in results["check"]:
        c = results["check"]
        print(f"\nNF4 paths vs fallback: {len(c['runs'])} runs, {'all within tolerance' if c['ok'] else 'FAILURES'}")
        print(f"{'layer':13s} {'M':>5s} {'bf16 us':>9s} {'nf4 us':>9s} {'speedup':>8s}  path")
        for r in c["speed"]:
            print(f"{r['shape']:13s} {r['M']:5d} {r['bf16_us']:9.1f} {r['nf4_us']:9.1f} {r['speedup']:8.2f}  {r['config']}")
    print(f"\nGLM-4V-9B full size, random weights, {gpu}, torch {torch.__version__}; one 1120x1120 image per row, "
          f"{args.new_tokens} new tokens (batch > 1: one image's embeddings repeated per row, engine path only)")
    modes = [m for m in results if results[m].get("batches")]
    if not modes:
        batches = []
    print(f"{'':40s}" + "".join(f"{m:>14s}" for m in modes))
    print(f"{'load+quantize (s)':40s}" + "".join(f"{results[m]['load_quantize_s']:14.1f}" for m in modes))
    print(f"{'weights resident (GiB)':40s}" + "".join(f"{results[m]['weights_gib']:14.2f}" for m in modes))
    print(f"{'  embedding table in host memory (GiB)':40s}"
          + "".join(f"{results[m].get('host_embeddings_gib', 0.0):14.2f}" for m in modes))
    for b in batches:
        for key, label, fmt in (("peak_allocated_gib", "peak torch allocated (GiB)", "{:14.2f}"),
                                ("peak_allocated_engine_gib", "peak allocated, engine path (GiB)", "{:14.2f}"),
                                ("engine_vision_peak_gib", "  engine: during vision", "{:14.2f}"),
                                ("engine_prefill_peak_gib", "  engine: during prefill", "{:14.2f}"),
                                ("engine_decode_peak_gib", "  engine: during graph decode", "{:14.2f}"),
                                ("engine_kv_gib", "  engine: KV cache (GiB)", "{:14.3f}"),
                                ("peak_reserved_gib", "peak torch reserved (GiB)", "{:14.2f}"),
                                ("nvidia_smi_process_gib", "process total nvidia-smi (GiB)", "{:14.2f}"),
                                ("vision_extra_gib", "  of which vision activations", "{:14.2f}"),
                                ("prefill_extra_gib", "  of which LM prefill activations", "{:14.2f}"),
                                ("ttft_s", "time to first token (s)", "{:14.3f}"),
                                ("decode_tps_eager", "decode tok/s per row, eager", "{:14.1f}"),
                                ("decode_tps_graph", "decode tok/s per row, CUDA graph", "{:14.1f}")):
            if b > 1 and key not in ("peak_allocated_engine_gib", "engine_kv_gib", "decode_tps_graph"):
                continue
            cells = []
            for m in modes:
                v = results[m]["batches"].get(str(b), {}).get(key)
                cells.append(fmt.format(v) if v is not None else f"{'-':>14s}")
            print(f"{f'batch {b}: ' + label:40s}" + "".join(cells))
    if "nf4" in modes and "bf16" in modes:
        for b in batches:
            r4, r16 = results["nf4"]["batches"].get(str(b), {}), results["bf16"]["batches"].get(str(b), {})
            for key, label in (("decode_tps_graph", "decode tok/s per row nf4/bf16"), ("ttft_s", "TTFT nf4/bf16")):
                if r4.get(key) and r16.get(key):
                    print(f"{f'batch {b}: ' + label:40s}{r4[key] / r16[key]:14.2f}")
    for m in results:
        if "error" in results[m]:
            print(f"{m}: FAILED\n{results[m]['error']}")
    out = dict(machine=dict(gpu=gpu, torch=torch.__version__), command=" ".join(["python"] + sys.argv),
               new_tokens=args.new_tokens, decode_attention=decode_attention_choice(), results=results)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {args.out}")
    return 0 if all("error" not in r and r.get("ok", True) for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
