"""The one-kernel decode attention (engine/triton_decode.py) against the engine's torch path on the GPU (GPU only):
same output on GLM-4V-9B's attention shape (32 query heads on 2 kv heads of 128, bf16) and the same cache writes,
then each path's GPU time per layer call as CUDA-graph replays, at several batch sizes and one context length. Each
path starts from q and k as projected: the torch path rotates them (vlmserve.rotary, four kernels), the kernel does
it as it loads them.

    PYTHONPATH=inference python bench/decode_attention_check.py [--context 1711] [--batches 1,16,64,128]

Writes bench/results/decode_attention_check.json ($OUT/... when OUT is set); exits 1 if an output differs.
"""
from __future__ import annotations

import argparse
import json
import sys

import torch

from result_path import result_path

HEADS, KV_HEADS, HEAD_DIM = 32, 2, 128


def paths(batch: int, context: int, slot_len: int):
    """(torch path, fused path), each a call of one layer's decode attention on its own copy of one cache."""
    from vlmserve.engine.kv_cache import SlotAttention, SlotKVCache
    from vlmserve.engine.triton_decode import decode_attention
    from vlmserve.rotary import RotaryTable, apply_rotary

    g = torch.Generator(device="cuda").manual_seed(batch)
    cache = SlotKVCache(1, batch, slot_len, KV_HEADS, HEAD_DIM, torch.bfloat16, torch.device("cuda"))
    cache.k.normal_(generator=g)
    cache.v.normal_(generator=g)
    qkv = torch.randn(batch, 1, HEADS + 2 * KV_HEADS, HEAD_DIM, device="cuda", dtype=torch.bfloat16, generator=g)
    # rows of different lengths around the context asked for, as a running batch has them
    pos = (context - torch.arange(batch, device="cuda") * 7).clamp(min=0)
    table = RotaryTable(HEAD_DIM, slot_len).to("cuda")
    table.build()
    factors = table(pos[:, None], torch.bfloat16)

    def heads(qk):      # qk: the query and key heads of qkv, rotated or not
        return (t.transpose(1, 2) for t in (qk[:, :, :HEADS], qk[:, :, HEADS:HEADS + KV_HEADS],
                                            qkv[:, :, HEADS + KV_HEADS:]))

    def torch_path():
        q, k, v = heads(apply_rotary(qkv[:, :, :HEADS + KV_HEADS], factors))
        return attn(0, q, k, v)

    def fused():
        q, k, v = heads(qkv)
        return decode_attention(q, k, v, other.k[0], other.v[0], pos, rotary=factors, max_context=kv_len)

    kv_len = 512
    while kv_len <= int(pos.max()):
        kv_len *= 2
    attn = SlotAttention(cache)
    attn._fused_decode = None                       # the torch path, whatever VLMSERVE_DECODE_ATTENTION says
    attn.plan_decode(pos, kv_len)
    other = SlotKVCache(1, batch, slot_len, KV_HEADS, HEAD_DIM, torch.bfloat16, torch.device("cuda"))
    other.k.copy_(cache.k)
    other.v.copy_(cache.v)
    return torch_path, fused, cache, other


def cache_difference(a, b) -> dict:
    """Where two caches differ: element counts, positions, the largest difference, and how many of the differing
    elements are in the rotated half of the head dims (a rounding of the rotation) or the other half."""
    out = {}
    for name in ("k", "v"):
        x, y = getattr(a, name).float(), getattr(b, name).float()
        diff = (x != y).nonzero()
        if len(diff) == 0:
            continue
        out[name] = dict(elements=len(diff), positions=sorted(set(diff[:, 3].tolist()))[:8],
                         rows=sorted(set(diff[:, 1].tolist()))[:8], max_abs=(x - y).abs().max().item(),
                         in_rotated_dims=int((diff[:, 4] < HEAD_DIM // 2).sum()))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--context", type=int, default=1711)
    p.add_argument("--batches", default="1,16,64,128")
    p.add_argument("--out", default="bench/results/decode_attention_check.json")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("needs a CUDA GPU", file=sys.stderr)
        return 2
    from vlmserve.gpu_timing import graph_time_us

    out = result_path(args.out)
    rows, ok = [], True
    print(f"{torch.cuda.get_device_name()}: decode attention, {HEADS} heads on {KV_HEADS} kv heads x {HEAD_DIM}, "
          f"bf16, ~{args.context} tokens of context")
    print("| batch | rel. error | same cache | torch path us/layer | one kernel us/layer | speed-up |\n|---|---|---|---|---|---|")
    for b in (int(x) for x in args.batches.split(",")):
        torch_path, fused, cache, other = paths(b, args.context, 2048 if args.context < 1900 else 4096)
        with torch.inference_mode():
            want, got = torch_path(), fused()
            err = ((got.float() - want.float()).abs().max() / want.float().abs().max()).item()
            same_cache = torch.equal(cache.k, other.k) and torch.equal(cache.v, other.v)
            if not same_cache:
                print(f"batch {b}: caches differ: {cache_difference(cache, other)}", flush=True)
            t_torch = graph_time_us(torch_path, reps=40, flush=True)
            t_fused = graph_time_us(fused, reps=40, flush=True)
        good = err <= 2e-2 and same_cache          # bf16 outputs; the torch path also rounds its scores to bf16
        ok &= good
        rows.append(dict(batch=b, rel_err=err, same_cache=same_cache, torch_us=t_torch, fused_us=t_fused, ok=good))
        print(f"| {b} | {err:.2e} | {same_cache} | {t_torch:.1f} | {t_fused:.1f} | {t_torch / t_fused:.2f}x |", flush=True)
        del cache, other
        torch.cuda.empty_cache()
    out.write_text(json.dumps({"device": torch.cuda.get_device_name(), "context": args.context, "rows": rows}, indent=2))
    print(f"wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
