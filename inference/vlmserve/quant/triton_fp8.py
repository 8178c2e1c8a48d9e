"""FP8 weights times 16-bit activations for few rows (decode steps), in Triton (GPU; TRITON_INTERPRET=1 on CPU).

At a decode step's 1-256 rows a linear layer is bound by reading its weight. The W8A8 path (`torch._scaled_mm`)
reads the e4m3 weight, half of bf16's bytes, but first needs the activations quantized, and on an H200 it measured
slower than bf16 there (decoder qkv at 64 rows: 16.7 us against 12.3; bench/results/fp8_check.json). Here the
activations stay in the compute dtype: each e4m3 weight tile is widened to it in registers and fed to the tensor
cores, the per-output-channel scale is applied to the product, so only the e4m3 bytes and one scale per row of the
weight are read and nothing is quantized. Prefill and vision rows stay on `_scaled_mm`, where FP8 pays.

Selected with VLMSERVE_FP8_DECODE=w8a16 until a GPU session has measured it (bench/gpu_session.sh fp8_decode).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .triton_tiles import _mma, num_sms, _scale_cols, _split_k, _store_tile, add_splits, split_target

BLOCK_N, BLOCK_K = 64, 128


@triton.jit
def _w8a16_kernel(x_ptr, w_ptr, scale_ptr, bias_ptr, out_ptr, M, N, K, stride_xm, SPLIT_K,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, IS_SPLIT: tl.constexpr,
                  HAS_BIAS: tl.constexpr, IEEE: tl.constexpr):
    pid_n = tl.program_id(0)
    pid_m = tl.program_id(1)
    pid_k = tl.program_id(2)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    n_mask = rn < N
    m_mask = rm < M
    steps = tl.cdiv(K, BLOCK_K)
    per_split = tl.cdiv(steps, SPLIT_K)
    first = pid_k * per_split
    last = tl.minimum(first + per_split, steps)
    rk = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    for step in range(first, last):
        kk = step * BLOCK_K + rk
        k_mask = kk < K
        w = tl.load(w_ptr + rn[:, None].to(tl.int64) * K + kk[None, :], mask=n_mask[:, None] & k_mask[None, :],
                    other=0.0)
        x = tl.load(x_ptr + rm[:, None].to(tl.int64) * stride_xm + kk[None, :], mask=m_mask[:, None] & k_mask[None, :],
                    other=0.0)
        acc = _mma(w.to(x.dtype), x, acc, True, IEEE)
    acc = _scale_cols(acc, tl.load(scale_ptr + rn, mask=n_mask, other=0.0), True)
    _store_tile(acc, rm, rn, m_mask, n_mask, M, N, pid_k, bias_ptr, out_ptr, True, HAS_BIAS, IS_SPLIT)


def w8a16_matmul(x: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x [M, K] (bf16 / fp16 / fp32, unit column stride) @ (weight [N, K] e4m3 * scale [N])^T + bias -> [M, N] in
    x's dtype."""
    m, k = x.shape
    n = weight.shape[0]
    out = torch.empty((m, n), device=x.device, dtype=x.dtype)
    if m == 0:
        return out
    block_m = 16 if m <= 16 else 32 if m <= 32 else 64
    tiles = triton.cdiv(m, block_m) * triton.cdiv(n, BLOCK_N)
    split = _split_k(tiles, triton.cdiv(k, BLOCK_K), num_sms(x.device), 4)
    target = split_target(out, split)
    _w8a16_kernel[(triton.cdiv(n, BLOCK_N), triton.cdiv(m, block_m), split)](
        x, weight, scale, scale if bias is None else bias, target, m, n, k, x.stride(0), split,
        BLOCK_M=block_m, BLOCK_N=BLOCK_N, BLOCK_K=BLOCK_K, IS_SPLIT=split > 1, HAS_BIAS=bias is not None,
        IEEE=x.dtype == torch.float32, num_warps=4, num_stages=3,
    )
    add_splits(target, bias, out)
    return out
