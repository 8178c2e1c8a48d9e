"""Decode attention as one Triton kernel per layer (GPU; TRITON_INTERPRET=1 runs it on CPU).

The plain-torch decode attention (kv_cache.SlotAttention) is seven kernels per layer: two cache writes, two batched
matmuls, the mask add, the softmax and a cast, with [rows, heads, context] scores written and read between them, and
it reads every key up to the context bucket (512, 1,024, 2,048...) whatever each row's length. Here one program per
(row, kv head) writes the new token's K/V into the cache, then walks that row's own cached keys in blocks with an
online softmax, its 16 query heads sharing each K/V block (grouped-query attention: K/V are read once per kv head),
and the new token's own key is attended to from registers. Its position is read from the step's static buffer, so
the kernel replays in a CUDA graph whatever each row's length.

With the step's rotary factors (`rotary`), q and the new k arrive as the projection wrote them and are rotated here
as they are loaded, with the same roundings as vlmserve.rotary.apply_rotary: the four kernels per layer that rotation
took in the decoder are gone too.

When rows x kv heads are too few to fill the GPU (batch 1 is 2 programs, each reading ~0.9 MB per layer at 1,700
tokens of context), each row's context is cut into splits (flash-decoding): one program per (row, kv head, split), each
leaving its running max, sum and accumulator, and a second kernel merges them per query head. The split count follows
from the rows and the step's context bucket, both fixed per CUDA graph.

The engine's decode attention on CUDA (VLMSERVE_DECODE_ATTENTION=torch selects the torch path instead); its output
and cache writes are checked against the torch path on the GPU by bench/decode_attention_check.py. FMA contraction is
off in the kernel so that the rotation rounds as the torch ops do and the cache gets the same keys bit for bit.
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from vlmserve.quant.triton_tiles import num_sms
from vlmserve.rotary import RotaryFactors
from vlmserve.triton_fused import rotate as _rotate


@triton.jit
def _decode_attention(q_ptr, kn_ptr, vn_ptr, kc_ptr, vc_ptr, pos_ptr, out_ptr, c_ptr, s_ptr, part_ptr, stat_ptr,
                      sq_b, sq_h, sk_b, sk_h, sv_b, sv_h, sc_b, sc_h, sc_s, so_b, so_h, sr_b, scale, group, chunk,
                      GROUP: tl.constexpr, D: tl.constexpr, BLOCK_S: tl.constexpr, IEEE: tl.constexpr,
                      ROTATE: tl.constexpr, SPLIT: tl.constexpr):
    b = tl.program_id(0).to(tl.int64)
    h = tl.program_id(1).to(tl.int64)
    split = tl.program_id(2)
    pos = tl.load(pos_ptr + b)                       # cached tokens before the new one = where it goes
    g = tl.arange(0, GROUP)                          # GROUP: the query heads per kv head, padded to a dot's 16
    real = g < group
    d = tl.arange(0, D)
    heads = h * group + g
    q = tl.load(q_ptr + b * sq_b + heads[:, None] * sq_h + d[None, :], mask=real[:, None], other=0.0)  # [GROUP, D]
    kn = tl.load(kn_ptr + b * sk_b + h * sk_h + d)
    if ROTATE:                                       # the pair partner of dim i is dim i ^ 1
        c = tl.load(c_ptr + b * sr_b + d)
        sn = tl.load(s_ptr + b * sr_b + d)
        q_sw = tl.load(q_ptr + b * sq_b + heads[:, None] * sq_h + (d ^ 1)[None, :], mask=real[:, None], other=0.0)
        q = _rotate(q, q_sw, c[None, :], sn[None, :])
        kn = _rotate(kn, tl.load(kn_ptr + b * sk_b + h * sk_h + (d ^ 1)), c, sn)
    vn = tl.load(vn_ptr + b * sv_b + h * sv_h + d)
    cache = b * sc_b + h * sc_h
    first = split == 0                               # the first context split also owns the new token
    tl.store(kc_ptr + cache + pos * sc_s + d, kn.to(kc_ptr.dtype.element_ty), mask=first & (d < D))
    tl.store(vc_ptr + cache + pos * sc_s + d, vn.to(vc_ptr.dtype.element_ty), mask=first & (d < D))
    # the new token's score opens the running max and its value the accumulator (other splits start empty)
    m = tl.sum(q.to(tl.float32) * kn.to(tl.float32)[None, :], axis=1) * scale              # [GROUP]
    m = tl.where(first, m, float("-inf"))
    l = tl.where(first, 1.0, 0.0) + tl.zeros([GROUP], tl.float32)
    acc = tl.zeros([GROUP, D], tl.float32) + tl.where(first, vn.to(tl.float32), 0.0)[None, :]
    lo = split.to(tl.int64) * chunk                 # int64 like pos: both loop bounds of one type
    hi = tl.minimum(pos, lo + chunk)
    for start in range(lo, hi, BLOCK_S):
        s = start + tl.arange(0, BLOCK_S)
        valid = s < hi
        k = tl.load(kc_ptr + cache + s[:, None] * sc_s + d[None, :], mask=valid[:, None], other=0.0)
        v = tl.load(vc_ptr + cache + s[:, None] * sc_s + d[None, :], mask=valid[:, None], other=0.0)
        if IEEE:
            scores = tl.dot(q, tl.trans(k.to(q.dtype)), input_precision="ieee")
        else:
            scores = tl.dot(q, tl.trans(k.to(q.dtype)))
        scores = tl.where(valid[None, :], scores * scale, float("-inf"))                   # [GROUP, BLOCK_S]
        m_new = tl.maximum(m, tl.max(scores, axis=1))    # finite: every block holds one valid key at least
        alpha = tl.exp(m - m_new)
        p = tl.exp(scores - m_new[:, None])
        l = l * alpha + tl.sum(p, axis=1)
        if IEEE:
            acc = acc * alpha[:, None] + tl.dot(p, v.to(tl.float32), input_precision="ieee")
        else:
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        m = m_new
    if SPLIT:
        # this split's unnormalised sums for _merge_splits: acc [B, H, splits, D], (max, sum) [B, H, splits, 2]
        n_split = tl.num_programs(2)
        row = (b * tl.num_programs(1) * group + heads) * n_split + split                   # [GROUP]
        tl.store(part_ptr + row[:, None] * D + d[None, :], acc, mask=real[:, None])
        tl.store(stat_ptr + row * 2, m, mask=real)
        tl.store(stat_ptr + row * 2 + 1, l, mask=real)
    else:
        out = acc / l[:, None]
        tl.store(out_ptr + b * so_b + heads[:, None] * so_h + d[None, :], out.to(out_ptr.dtype.element_ty),
                 mask=real[:, None])


@triton.jit
def _merge_splits(part_ptr, stat_ptr, out_ptr, so_b, so_h, n_heads, n_split,
                  D: tl.constexpr, SPLITS: tl.constexpr):
    """One program per (row, query head): the softmax over all splits from each split's max, sum and accumulator."""
    b = tl.program_id(0).to(tl.int64)
    h = tl.program_id(1).to(tl.int64)
    i = tl.arange(0, SPLITS)
    d = tl.arange(0, D)
    row = (b * n_heads + h) * n_split + i
    used = i < n_split
    m = tl.load(stat_ptr + row * 2, mask=used, other=float("-inf"))
    l = tl.load(stat_ptr + row * 2 + 1, mask=used, other=0.0)
    acc = tl.load(part_ptr + row[:, None] * D + d[None, :], mask=used[:, None], other=0.0)
    w = tl.exp(m - tl.max(m, axis=0))                # split 0 holds the new token: the max is finite
    out = tl.sum(acc * w[:, None], axis=0) / tl.sum(l * w, axis=0)
    tl.store(out_ptr + b * so_b + h * so_h + d, out.to(out_ptr.dtype.element_ty))


def context_splits(programs: int, max_context: int, sms: int, min_chunk: int = 128) -> int:
    """How many pieces to cut each row's context into, so that (rows x kv heads x splits) programs fill the GPU
    twice over, no piece shorter than `min_chunk` keys (each split costs a merge)."""
    want = -(-2 * sms // programs)
    return max(1, min(want, max_context // min_chunk))


def decode_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
                     cache_pos: torch.Tensor, rotary: RotaryFactors | None = None, max_context: int | None = None,
                     block_s: int = 64, splits: int | None = None) -> torch.Tensor:
    """q [B, H, 1, D], k / v [B, KV, 1, D] (the new token, any strides); k_cache / v_cache [slots, KV, S, D] of one
    layer, rows 0..B-1 in use; cache_pos [B]: each row's new position. Writes the new K/V into the caches and returns
    [B, H, 1, D]: softmax(q K^T / sqrt(D)) V over each row's positions 0..cache_pos, the new one included.
    With `rotary` (factors c / s [B, 1, 1, D]), q and k are rotated first, and the cache gets the rotated k.
    `max_context` (a bound on cache_pos, default the cache length) sets how the context is split over programs when
    rows x kv heads are too few to fill the GPU; `splits` overrides that choice (tests)."""
    b, n_heads, _, d = q.shape
    n_kv = k.shape[1]
    group = n_heads // n_kv
    if k_cache.stride(3) != 1 or q.stride(3) != 1 or k.stride(3) != 1 or v.stride(3) != 1:
        raise ValueError("decode attention needs the head dimension contiguous")
    if d < 16 or d & (d - 1):
        raise ValueError(f"decode attention needs a power-of-two head dimension >= 16, got {d}")
    if rotary is not None:
        c, s = (f.reshape(b, d) for f in rotary)
        if c.stride(1) != 1 or s.stride() != c.stride() or c.dtype != q.dtype:
            raise ValueError("decode attention needs the rotary factors in q's dtype, head dimension contiguous")
    else:
        c = s = q                                    # not read
    context = max_context or k_cache.shape[2]
    if splits is None:
        splits = context_splits(b * n_kv, context, num_sms(q.device))
    chunk = triton.cdiv(triton.cdiv(context, splits), block_s) * block_s
    splits = triton.cdiv(context, chunk)
    out = torch.empty((b, n_heads, 1, d), dtype=q.dtype, device=q.device)
    part = stat = out                                # not written without a split
    if splits > 1:
        part = torch.empty((b, n_heads, splits, d), dtype=torch.float32, device=q.device)
        stat = torch.empty((b, n_heads, splits, 2), dtype=torch.float32, device=q.device)
    _decode_attention[(b, n_kv, splits)](
        q, k, v, k_cache, v_cache, cache_pos, out, c, s, part, stat,
        q.stride(0), q.stride(1), k.stride(0), k.stride(1), v.stride(0), v.stride(1),
        k_cache.stride(0), k_cache.stride(1), k_cache.stride(2), out.stride(0), out.stride(1), c.stride(0),
        1.0 / math.sqrt(d), group, chunk, GROUP=max(16, triton.next_power_of_2(group)), D=d, BLOCK_S=block_s,
        IEEE=q.dtype == torch.float32, ROTATE=rotary is not None, SPLIT=splits > 1, num_warps=4, enable_fp_fusion=False,
    )
    if splits > 1:
        _merge_splits[(b, n_heads)](part, stat, out, out.stride(0), out.stride(1), n_heads, splits, D=d,
                                    SPLITS=triton.next_power_of_2(splits), num_warps=4)
    return out
