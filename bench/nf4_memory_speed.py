"""GLM-4V-9B full size, random weights: bf16 vs NF4 memory and speed, side by side.

Run from the repo root on a CUDA machine:
    PYTHONPATH=inference python bench/nf4_memory_speed.py [--batches 1,16] [--new-tokens 256]

Each mode runs in its own subprocess (so nvidia-smi's per-process total is that mode's alone):
- build: the model is made on the meta device, then materialized one tensor at a time on the GPU;
  in nf4 mode each linear weight of the default policy is quantized right after it is created and its
  16-bit copy freed (NF4Linear.from_weight defaults: bf16 compute, double-quantized absmax), so 16-bit weights of quantized layers are never all resident ("load+quantize");
- batch 1 (the memory target): one 1120x1120 image + a short prompt, 256 greedy tokens with
  vlmserve.generate (eager); torch max allocated over that run and the process total from nvidia-smi;
- speed: time to first token (vision + prefill + first logits), decode tokens/s eager (generate) and
  with the serving engine's CUDA-graph decode step (engine.DecodeStep over a SlotKVCache), per batch.
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

GIB = 2**30
IDS = dict(gmask=151331, sop=151333, user=151336, assistant=151337, boi=151339, eot=151329, eoi=151340, nl=198)


def build(mode: str, device: torch.device):
    from vlmserve.config import glm4v_9b
    from vlmserve.model import GLM4V
    from vlmserve.quant.linear import NF4Linear
    from vlmserve.quant.policy import should_quantize

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


def sync_time() -> float:
    torch.cuda.synchronize()
    return time.perf_counter()


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
def graph_decode_tps(model, cfg, ids, pixels, steps: int) -> float:
    from vlmserve.engine.decode_step import DecodeStep
    from vlmserve.engine.kv_cache import SlotAttention, SlotKVCache

    b = ids.shape[0]
    device = ids.device
    cache = SlotKVCache(cfg.num_layers, b, 2048, cfg.n_kv_heads, cfg.head_dim, torch.bfloat16, device)
    attn = SlotAttention(cache)
    attn.plan_prefill(list(range(b)), [0] * b)
    embeds, positions = model.embed(ids, model.encode_images(pixels), None)
    hidden = model.forward_embeds(embeds, positions, attn)
    nxt = model.logits(hidden[:, -1]).argmax(-1).tolist()
    step = DecodeStep(model, attn, b, 2048, cfg.pad_token_id, device, use_graphs=True)
    length, pos = embeds.shape[1], int(positions[0, -1])

    def run(i: int):
        nonlocal nxt
        logits = step.run(nxt, [pos + 1 + i] * b, [length + i] * b)
        nxt = logits.argmax(-1).tolist()

    for i in range(3):  # capture + warm
        run(i)
    t0 = sync_time()
    for i in range(3, 3 + steps):
        run(i)
    return steps * 1.0 / (sync_time() - t0)


def run_mode(mode: str, batches: list[int], new_tokens: int) -> dict:
    from vlmserve.generate import generate

    device = torch.device("cuda")
    torch.cuda.init()
    t0 = sync_time()
    model, cfg, n_quant = build(mode, device)
    load_s = sync_time() - t0
    res = dict(mode=mode, quantized_linears=n_quant, load_quantize_s=load_s,
               weights_gib=torch.cuda.memory_allocated() / GIB, batches={})
    size = cfg.vision.image_size
    for b in batches:
        ids = prompt(b, device)
        pixels = torch.randn(b, 3, size, size, device=device, dtype=torch.bfloat16)
        generate(model, ids, pixels, max_new_tokens=2, eos_ids=[])  # compile / tune kernels
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t_first = ttft(model, ids, pixels)
        t0 = sync_time()
        # batch 1 carries the memory target (256 tokens); larger batches only need a decode rate
        gen = generate(model, ids, pixels, max_new_tokens=new_tokens if b == 1 else min(new_tokens, 32), eos_ids=[])
        total = sync_time() - t0
        row = dict(ttft_s=t_first, new_tokens=len(gen.ids[0]),
                   decode_tps_eager=(len(gen.ids[0]) - 1) / max(total - t_first, 1e-9),
                   peak_allocated_gib=torch.cuda.max_memory_allocated() / GIB,
                   peak_reserved_gib=torch.cuda.max_memory_reserved() / GIB)
        smi = nvidia_smi_process_mib()
        row["nvidia_smi_process_gib"] = smi / 1024 if smi is not None else None
        if b == 1:
            row.update(stage_peaks(model, ids, pixels))
        try:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            row["decode_tps_graph"] = graph_decode_tps(model, cfg, ids, pixels, min(new_tokens, 64))
            # the serving engine's path: slot KV cache, flash prefill, CUDA-graph decode
            row["peak_allocated_engine_gib"] = torch.cuda.max_memory_allocated() / GIB
        except Exception as exc:  # the engine's decode step is another team's code: report, don't die
            row["decode_tps_graph"] = None
            row["graph_error"] = f"{type(exc).__name__}: {exc}"[:300]
        res["batches"][str(b)] = row
        print(mode, b, row, file=sys.stderr, flush=True)
        del ids, pixels
        torch.cuda.empty_cache()
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--modes", default="nf4,bf16")
    ap.add_argument("--out", default="bench/results/nf4_memory_speed.json")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    if args.child:
        print(json.dumps(run_mode(args.child, batches, args.new_tokens)))
        return 0
    if not torch.cuda.is_available():
        print("needs a CUDA GPU", file=sys.stderr)
        return 2
    results = {}
    for mode in args.modes.split(","):
        proc = subprocess.run([sys.executable, __file__, "--child", mode, "--batches", args.batches,
                               "--new-tokens", str(args.new_tokens)], capture_output=True, text=True)
        sys.stderr.write(proc.stderr[-3000:])
        if proc.returncode != 0:
            results[mode] = dict(error=proc.stderr[-2000:])
            continue
        results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:  # after each mode, so a cut-off run keeps what it measured
            json.dump(dict(partial=True, results=results), f, indent=1)
    gpu = torch.cuda.get_device_name()
    print(f"\nGLM-4V-9B full size, random weights, {gpu}, torch {torch.__version__}; one 1120x1120 image per row, "
          f"{args.new_tokens} new tokens at batch 1 (32 at larger batches)")
    modes = [m for m in results if "batches" in results[m]]
    print(f"{'':40s}" + "".join(f"{m:>14s}" for m in modes))
    print(f"{'load+quantize (s)':40s}" + "".join(f"{results[m]['load_quantize_s']:14.1f}" for m in modes))
    print(f"{'weights resident (GiB)':40s}" + "".join(f"{results[m]['weights_gib']:14.2f}" for m in modes))
    for b in batches:
        for key, label, fmt in (("peak_allocated_gib", "peak torch allocated (GiB)", "{:14.2f}"),
                                ("peak_allocated_engine_gib", "peak allocated, engine path (GiB)", "{:14.2f}"),
                                ("nvidia_smi_process_gib", "process total nvidia-smi (GiB)", "{:14.2f}"),
                                ("vision_extra_gib", "  of which vision activations", "{:14.2f}"),
                                ("prefill_extra_gib", "  of which LM prefill activations", "{:14.2f}"),
                                ("ttft_s", "time to first token (s)", "{:14.3f}"),
                                ("decode_tps_eager", "decode tok/s per row, eager", "{:14.1f}"),
                                ("decode_tps_graph", "decode tok/s per row, CUDA graph", "{:14.1f}")):
            cells = []
            for m in modes:
                v = results[m]["batches"].get(str(b), {}).get(key)
                cells.append(fmt.format(v) if v is not None else f"{'-':>14s}")
            print(f"{f'batch {b}: ' + label:40s}" + "".join(cells))
    for m in results:
        if "error" in results[m]:
            print(f"{m}: FAILED\n{results[m]['error']}")
    out = dict(machine=dict(gpu=gpu, torch=torch.__version__), command=" ".join(["python"] + sys.argv),
               new_tokens=args.new_tokens, results=results)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {args.out}")
    return 0 if all("batches" in r for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
