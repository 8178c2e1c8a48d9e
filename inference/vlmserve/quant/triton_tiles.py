"""Tile helpers of the NF4 matmul kernels (triton_nf4), kept apart from their dequantization: the tensor-core
product of a weight tile and an x tile in either operand order, per-output-column scales, the store of a tile (or of
one split-K partial) and the reduce of the partials, and how far to split K for a grid that would not fill the GPU.
Split-K partials go to a float32 scratch [SPLIT_K, M, N] that one reduce kernel adds in a fixed order (deterministic,
unlike atomics), the bias with them.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _mma(w, x, acc, W_IS_A: tl.constexpr, IEEE: tl.constexpr):
    """acc + the product of a dequantized weight tile w [BLOCK_N, K] and an x tile [BLOCK_M, K]: laid out
    [BLOCK_N, BLOCK_M] (W_IS_A: the weight is the first operand, which Hopper's wgmma can take from registers) or
    [BLOCK_M, BLOCK_N]. IEEE: float32 inputs multiplied exactly (no TF32)."""
    if W_IS_A:
        if IEEE:
            acc = tl.dot(w, tl.trans(x), acc, input_precision="ieee")
        else:
            acc = tl.dot(w, tl.trans(x), acc)
    else:
        if IEEE:
            acc = tl.dot(x, tl.trans(w), acc, input_precision="ieee")
        else:
            acc = tl.dot(x, tl.trans(w), acc)
    return acc


@triton.jit
def _scale_cols(part, s, W_IS_A: tl.constexpr):
    """part with each weight row's result multiplied by its scale s [BLOCK_N]."""
    if W_IS_A:
        part = part * s[:, None]
    else:
        part = part * s[None, :]
    return part


@triton.jit
def _store_tile(acc, rm, rn, m_mask, n_mask, M, N, pid_k, bias_ptr, out_ptr, W_IS_A: tl.constexpr,
                HAS_BIAS: tl.constexpr, IS_SPLIT: tl.constexpr):
    """The tile into out [M, N] (plus the bias, in the output dtype), or into split pid_k's float32 partials
    [SPLIT_K, M, N] (the reduce kernel adds the bias)."""
    if W_IS_A:
        out_mask = n_mask[:, None] & m_mask[None, :]
        out_offs = rm[None, :] * N + rn[:, None]
        if HAS_BIAS and not IS_SPLIT:
            acc += tl.load(bias_ptr + rn, mask=n_mask, other=0.0).to(tl.float32)[:, None]
    else:
        out_mask = m_mask[:, None] & n_mask[None, :]
        out_offs = rm[:, None] * N + rn[None, :]
        if HAS_BIAS and not IS_SPLIT:
            acc += tl.load(bias_ptr + rn, mask=n_mask, other=0.0).to(tl.float32)[None, :]
    if IS_SPLIT:
        tl.store(out_ptr + pid_k * M * N + out_offs, acc, mask=out_mask)
    else:
        tl.store(out_ptr + out_offs, acc.to(out_ptr.dtype.element_ty), mask=out_mask)


@triton.jit
def _splitk_reduce_kernel(part_ptr, bias_ptr, out_ptr, MN, N, SPLIT_K,
                          BLOCK: tl.constexpr, HAS_BIAS: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < MN
    acc = tl.zeros((BLOCK,), dtype=tl.float32)
    for s in range(SPLIT_K):
        acc += tl.load(part_ptr + s * MN + offs, mask=mask, other=0.0)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + offs % N, mask=mask, other=0.0).to(tl.float32)
    tl.store(out_ptr + offs, acc.to(out_ptr.dtype.element_ty), mask=mask)


_sm_count: dict[int, int] = {}


def num_sms(device: torch.device) -> int:
    """The GPU's multiprocessors (the decode attention sizes its context splits by it too); 132 off CUDA."""
    if device.type != "cuda":
        return 132
    idx = device.index if device.index is not None else torch.cuda.current_device()
    if idx not in _sm_count:
        _sm_count[idx] = torch.cuda.get_device_properties(idx).multi_processor_count
    return _sm_count[idx]


def _split_k(n_programs: int, k_steps: int, sms: int, min_steps: int, waves: int = 2) -> int:
    """Enough K splits for ~`waves` programs per SM, each split keeping >= min_steps loop steps."""
    want = -(-waves * sms // n_programs)
    return max(1, min(want, k_steps // min_steps, 16))


def split_target(out: torch.Tensor, split: int) -> torch.Tensor:
    """Where the kernel stores: `out` itself, or the float32 partials [split, M, N] that `add_splits` sums into it."""
    return out if split == 1 else torch.empty((split, *out.shape), device=out.device, dtype=torch.float32)


def add_splits(target: torch.Tensor, bias: torch.Tensor | None, out: torch.Tensor) -> None:
    """Sums the split-K partials in `target` (and the bias) into `out`; nothing when the kernel stored into `out`."""
    if target is out:
        return
    mn = out.numel()
    _splitk_reduce_kernel[(triton.cdiv(mn, 1024),)](target, out if bias is None else bias, out, mn, out.shape[1],
                                                   target.shape[0], BLOCK=1024, HAS_BIAS=bias is not None, num_warps=4)
