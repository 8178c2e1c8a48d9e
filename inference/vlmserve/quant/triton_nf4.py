"""NF4 matmul on the GPU (Triton): out[M, N] = x[M, K] @ dequant(W)[N, K]^T + bias.

Requires K % 64 == 0 (true for every GLM-4V-9B layer), so each 64-wide K tile of a row is one quant
block (one absmax) and, K being even, the high nibble of every byte is an even column, the low nibble the
next odd column. No 16-bit copy of a whole weight is ever written.

On a weight in the kernel layout (vlmserve.quant.nf4_layout: every bf16/fp16 layer whose shape fits, on a GPU where
Gluon builds; see kernel_layout_fits), 1..256 rows run the Gluon ring kernel (vlmserve.quant.gluon_nf4) or dequant +
cuBLAS, and more rows dequantize that layout (_nf4_dequant_grouped_kernel) for the chunked cuBLAS path. The paths
below read bitsandbytes' layout, which the other layers keep (and all of them with VLMSERVE_NF4_LAYOUT=bnb).

Paths on bitsandbytes' layout (picked by `nf4_matmul` from M, by timing candidates on first use):
- M == 1: GEMV - CUDA-core FMAs on [BLOCK_N, R, 32] byte tiles (R quant blocks per step), dequantized in
  registers, split-K so that even N = 4096 fills the GPU (decode at batch 1: memory-bound, reads 1/4 of bf16);
- 2 <= M <= 256 (batched decode, short prefills): the fused tensor-core kernels (_nf4_tc_kernel, _nf4_dot_kernel) -
  each 64-wide quant block of the weight tile is looked up in the NF4 table in registers and fed to tl.dot, so only
  the packed bytes and absmax are read (no 16-bit weight anywhere), split-K when the tiles alone do not fill the GPU;
- M > 256 (prefill, vision): dequantize W in row chunks into a shared scratch buffer and multiply each chunk with
  cuBLAS (vlmserve.quant.chunked): the weight is dequantized once per call and cuBLAS runs at full speed.
Split-K partials go to a float32 scratch [SPLIT_K, M, N] and one reduce kernel adds them and the bias in
a fixed order (deterministic, unlike atomics).

Block sizes and paths are chosen per (M bucket, N, K, dtype) on first use, and kept on disk for the next start on the
same GPU and build (vlmserve.quant.tuning_cache); tuning is skipped while a CUDA graph is being
captured: the first candidate is used then), a fused candidate only if its output matches the dequant + cuBLAS
path's on that first input (a guard against a kernel that is wrong on some GPU / Triton build): up to 256 rows by the GPU time of CUDA-graph replays with L2 flushed
between calls (decode steps are graph replays that stream every weight from HBM), above by the wall time of eager
calls (prefill is eager, and there the launches of the chunked path count).
Import this module only where Triton exists; vlmserve.quant.linear imports it lazily.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace

import torch
import triton
import triton.language as tl

from . import chunked, nf4_prmt
from .partials import Partials
from .triton_tiles import _mma, _scale_cols, _split_k, _store_tile, add_splits, num_sms, split_target
from .tuning_cache import TuningCache, default_path
from ..gpu_timing import KERNEL_TIMING, capturing, graph_time_us, wall_time_us
from ..kernel_choice import Rejected, fastest, relative_max_error

QBLOCK = 64  # NF4 block size the kernels assume
NESTED_QBLOCK = 256


@triton.jit
def _block_scale(absmax_ptr, qabs_ptr, code2_ptr, nested_ptr, offset, blk, mask, DOUBLE_QUANT: tl.constexpr):
    # mask None: every block is in range (no predicate)
    if DOUBLE_QUANT:
        if mask is None:
            q = tl.load(qabs_ptr + blk).to(tl.int32)
            s = tl.load(code2_ptr + q) * tl.load(nested_ptr + blk // 256) + offset
        else:
            q = tl.load(qabs_ptr + blk, mask=mask, other=0).to(tl.int32)
            s = tl.load(code2_ptr + q) * tl.load(nested_ptr + blk // 256, mask=mask, other=0.0) + offset
    else:
        if mask is None:
            s = tl.load(absmax_ptr + blk)
        else:
            s = tl.load(absmax_ptr + blk, mask=mask, other=0.0)
    return s


@triton.jit
def _nf4_gemv_kernel(
    x_ptr, packed_ptr, absmax_ptr, qabs_ptr, code2_ptr, nested_ptr, offset, code_ptr, bias_ptr, out_ptr,
    N, K,
    BLOCK_N: tl.constexpr, R: tl.constexpr, SPLIT_K: tl.constexpr, DOUBLE_QUANT: tl.constexpr,
    HAS_BIAS: tl.constexpr,
):
    # One step covers R quant blocks of BLOCK_N rows: a [BLOCK_N, R, 32] byte tile, so that many bytes are
    # in flight per program (a memory-bound kernel lives on that).
    pid_n = tl.program_id(0)
    pid_k = tl.program_id(1)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rr = tl.arange(0, R)
    rj = tl.arange(0, 32)
    n_mask = rn < N
    k_blocks = K // 64
    steps = tl.cdiv(k_blocks, R)
    per_split = tl.cdiv(steps, SPLIT_K)
    s_begin = pid_k * per_split
    s_end = tl.minimum(s_begin + per_split, steps)
    w_ptrs = packed_ptr + rn[:, None, None] * (K // 2) + rr[None, :, None] * 32 + rj[None, None, :]
    blk_base = rn * k_blocks
    acc = tl.zeros((BLOCK_N, R, 32), dtype=tl.float32)
    for s in range(s_begin, s_end):
        blk = s * R + rr
        b_mask = blk < k_blocks
        wb = tl.load(w_ptrs + s * (R * 32), mask=n_mask[:, None, None] & b_mask[None, :, None], other=0,
                     eviction_policy="evict_first")
        scale = _block_scale(absmax_ptr, qabs_ptr, code2_ptr, nested_ptr, offset, blk_base[:, None] + blk[None, :],
                             n_mask[:, None] & b_mask[None, :], DOUBLE_QUANT)
        x_offs = blk[:, None] * 64 + 2 * rj[None, :]
        x_even = tl.load(x_ptr + x_offs, mask=b_mask[:, None], other=0.0).to(tl.float32)
        x_odd = tl.load(x_ptr + x_offs + 1, mask=b_mask[:, None], other=0.0).to(tl.float32)
        c_hi = tl.load(code_ptr + (wb >> 4).to(tl.int32))
        c_lo = tl.load(code_ptr + (wb & 15).to(tl.int32))
        acc += (c_hi * x_even[None, :, :] + c_lo * x_odd[None, :, :]) * scale[:, :, None]
    res = tl.sum(tl.sum(acc, axis=2), axis=1)
    if SPLIT_K == 1:
        if HAS_BIAS:
            res += tl.load(bias_ptr + rn, mask=n_mask, other=0.0).to(tl.float32)
        tl.store(out_ptr + rn, res.to(out_ptr.dtype.element_ty), mask=n_mask)
    else:
        tl.store(out_ptr + pid_k * N + rn, res, mask=n_mask)


@triton.jit
def _nf4_tc_kernel(
    x_ptr, packed_ptr, absmax_ptr, qabs_ptr, code2_ptr, nested_ptr, offset, code_ptr, bias_ptr, out_ptr,
    M, N, K, stride_xm, SPLIT_K,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, R: tl.constexpr, IS_SPLIT: tl.constexpr, GROUP_M: tl.constexpr,
    W_IS_A: tl.constexpr, X_SPLIT: tl.constexpr, DOUBLE_QUANT: tl.constexpr, HAS_BIAS: tl.constexpr,
    IEEE: tl.constexpr,
):
    # Tensor-core NF4 matmul, the weight dequantized in registers R quant blocks (R x 64 columns) per step.
    # A step's bytes [BLOCK_N, R, 32] give two dots of K = 32R: the high nibbles against the even columns of x,
    # the low nibbles against the odd ones, so nibbles are never interleaved. x comes permuted per quant block
    # (its 32 even columns, then its 32 odd ones: see _launch), so both halves are contiguous, vector loads;
    # strided loads of x cost one instruction per element and made the kernel scale with M. X_SPLIT: x is read as it
    # is instead (one contiguous [BLOCK_M, R, 64] load per step, split into even and odd columns in registers), which
    # saves the permuted copy (a kernel launch per call). Each step's bytes and scales are
    # loaded one step ahead (loop-carried), so HBM latency overlaps the lookups and dots of the step before:
    # at decode sizes the kernel lives on the bytes it keeps in flight.
    # W_IS_A: out^T[BLOCK_N, BLOCK_M] = W @ x^T, the dequantized weight is the first operand (Hopper's wgmma takes
    # it from registers); else out[BLOCK_M, BLOCK_N] = x @ W^T. Values are code * absmax in float32, rounded once
    # to the compute dtype, exactly as the fallback's dequantization.
    # SPLIT_K is a runtime value (one compiled kernel for every split count); IS_SPLIT says whether it is > 1.
    KB: tl.constexpr = 32 * R
    pid = tl.program_id(0)
    pid_k = tl.program_id(1)
    num_m = tl.cdiv(M, BLOCK_M)
    num_n = tl.cdiv(N, BLOCK_N)
    # Grouped order: GROUP_M row tiles sweep the N tiles together, so W tiles are reused from L2.
    in_group = GROUP_M * num_n
    first_m = (pid // in_group) * GROUP_M
    group_rows = tl.minimum(num_m - first_m, GROUP_M)
    pid_m = first_m + (pid % in_group) % group_rows
    pid_n = (pid % in_group) // group_rows

    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rr = tl.arange(0, R)
    rj = tl.arange(0, 32)
    m_mask = rm < M
    n_mask = rn < N
    k_blocks = K // 64
    steps = tl.cdiv(k_blocks, R)
    per_split = tl.cdiv(steps, SPLIT_K)
    s_begin = pid_k * per_split
    s_end = tl.minimum(s_begin + per_split, steps)
    w_ptrs = packed_ptr + rn[:, None, None] * (K // 2) + rr[None, :, None] * 32 + rj[None, None, :]
    x_ptrs = x_ptr + rm[:, None, None] * stride_xm + rr[None, :, None] * 64 + rj[None, None, :]  # [BLOCK_M, R, 32]
    x_ptrs64 = x_ptr + rm[:, None, None] * stride_xm + rr[None, :, None] * 64 + tl.arange(0, 64)[None, None, :]
    blk_base = rn[:, None] * k_blocks
    dt = x_ptr.dtype.element_ty

    blk = s_begin * R + rr
    b_mask = (blk < k_blocks) & (s_begin < s_end)
    wb = tl.load(w_ptrs + s_begin * KB, mask=n_mask[:, None, None] & b_mask[None, :, None], other=0)
    scale = _block_scale(absmax_ptr, qabs_ptr, code2_ptr, nested_ptr, offset, blk_base + blk[None, :],
                         n_mask[:, None] & b_mask[None, :], DOUBLE_QUANT)
    if W_IS_A:
        acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    else:
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for s in range(s_begin, s_end):
        nxt = (s + 1) * R + rr
        nxt_mask = (nxt < k_blocks) & (s + 1 < s_end)
        wb_next = tl.load(w_ptrs + (s + 1) * KB, mask=n_mask[:, None, None] & nxt_mask[None, :, None], other=0)
        scale_next = _block_scale(absmax_ptr, qabs_ptr, code2_ptr, nested_ptr, offset, blk_base + nxt[None, :],
                                  n_mask[:, None] & nxt_mask[None, :], DOUBLE_QUANT)
        x_mask = m_mask[:, None, None] & (s * R + rr < k_blocks)[None, :, None]
        if X_SPLIT:
            x_even, x_odd = tl.split(tl.reshape(tl.load(x_ptrs64 + s * (64 * R), mask=x_mask, other=0.0),
                                                (BLOCK_M, R, 32, 2)))
            x_even = tl.reshape(x_even, (BLOCK_M, KB))
            x_odd = tl.reshape(x_odd, (BLOCK_M, KB))
        else:
            x_even = tl.reshape(tl.load(x_ptrs + s * (64 * R), mask=x_mask, other=0.0), (BLOCK_M, KB))
            x_odd = tl.reshape(tl.load(x_ptrs + s * (64 * R) + 32, mask=x_mask, other=0.0), (BLOCK_M, KB))
        w_hi = tl.reshape((tl.load(code_ptr + (wb >> 4).to(tl.int32)) * scale[:, :, None]).to(dt), (BLOCK_N, KB))
        w_lo = tl.reshape((tl.load(code_ptr + (wb & 15).to(tl.int32)) * scale[:, :, None]).to(dt), (BLOCK_N, KB))
        acc = _mma(w_lo, x_odd, _mma(w_hi, x_even, acc, W_IS_A, IEEE), W_IS_A, IEEE)
        wb = wb_next
        scale = scale_next
    _store_tile(acc, rm, rn, m_mask, n_mask, M, N, pid_k, bias_ptr, out_ptr, W_IS_A, HAS_BIAS, IS_SPLIT)


@triton.jit
def _nf4_dot_kernel(
    x_ptr, packed_ptr, absmax_ptr, qabs_ptr, code2_ptr, nested_ptr, offset, lut_ptr, bias_ptr, out_ptr,
    M, N, K, stride_xm, SPLIT_K,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, R: tl.constexpr, IS_SPLIT: tl.constexpr,
    W_IS_A: tl.constexpr, LUT: tl.constexpr, X_SPLIT: tl.constexpr, DOUBLE_QUANT: tl.constexpr,
    HAS_BIAS: tl.constexpr, IEEE: tl.constexpr, PRMT_ASM: tl.constexpr = "", SCALE_W: tl.constexpr = False,
    EVEN: tl.constexpr = False,
):
    # One quant block (64 columns of K, one scale) at a time, R of them unrolled per loop step so Triton's
    # pipeliner (num_stages) keeps several steps' bytes in flight. Per block: a [BLOCK_N, 32] byte tile (32
    # contiguous bytes per weight row), its nibbles decoded in registers, two dots against x's even and odd
    # columns (x comes permuted per quant block, see _launch, unless X_SPLIT), so nibbles are never interleaved.
    # LUT selects the decoding (the table is passed in by _launch):
    #   0: a 16-entry table in the compute dtype, one lookup per nibble;
    #   1: a 256-entry int32 table, one lookup per byte giving both nibbles' 16-bit codes (half the lookups);
    #   3: no lookup in memory: PRMT_ASM (vlmserve.quant.nf4_prmt) decodes four bytes at a time from the table held
    #      in registers (the tuner's choice on an H100). Passing the table's words in as operands loaded once
    #      (tried in session 10 as LUT 4) made Triton decode the bytes as loaded and move the 16-bit results into
    #      the MMA's layout through shared memory, instead of gathering the bytes into that layout first: 4-16%
    #      slower on every decoder shape on an H100, though fewer instructions per weight. Gone.
    # The block's scale multiplies the dot's [BLOCK_N, BLOCK_M] product of that block (at decode sizes far fewer
    # multiplies than scaling every weight), or with SCALE_W the decoded weights in the compute dtype, so the dots
    # accumulate in place. (Scaling each weight in float32 before the dot, as the fallback rounds, made this kernel
    # ~10x slower on an H100 at 16 and 64 rows: the tensor-core kernel above does that, this one does not.)
    # The scale of block b of row n is loaded directly for the rows of the tile (no extraction from a wider
    # load, which would be a cross-thread reduction and a layout conversion per block).
    # EVEN: N % BLOCK_N == 0 and the quant blocks per row % R == 0 (every GLM-4V-9B decoder shape), so the weight
    # and scale loads need no masks: the predicates cost instructions in the main loop (_launch decides).
    pid_n = tl.program_id(0)
    pid_m = tl.program_id(1)
    pid_k = tl.program_id(2)
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rj = tl.arange(0, 32)
    m_mask = rm < M
    n_mask = rn < N
    k_blocks = K // 64
    groups = tl.cdiv(k_blocks, R)
    per_split = tl.cdiv(groups, SPLIT_K)
    g_begin = pid_k * per_split
    g_end = tl.minimum(g_begin + per_split, groups)
    w_row = packed_ptr + rn[:, None] * (K // 2) + rj[None, :]               # [BLOCK_N, 32]
    x_row = x_ptr + rm[:, None] * stride_xm + rj[None, :]                   # [BLOCK_M, 32]
    x_row64 = x_ptr + rm[:, None] * stride_xm + tl.arange(0, 64)[None, :]   # [BLOCK_M, 64]
    s_row = rn * k_blocks
    dt = x_ptr.dtype.element_ty
    if W_IS_A:
        acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    else:
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for g in range(g_begin, g_end):
        for r in tl.static_range(R):
            b = g * R + r
            if EVEN:
                ok = True
                wb = tl.load(w_row + b * 32)
                s = _block_scale(absmax_ptr, qabs_ptr, code2_ptr, nested_ptr, offset, s_row + b, None, DOUBLE_QUANT)
            else:
                ok = b < k_blocks
                wb = tl.load(w_row + b * 32, mask=n_mask[:, None] & ok, other=0)
                s = _block_scale(absmax_ptr, qabs_ptr, code2_ptr, nested_ptr, offset, s_row + b, n_mask & ok,
                                 DOUBLE_QUANT)                              # [BLOCK_N] float32
            if LUT < 3:
                wb = wb.to(tl.int32)
            if LUT == 3:
                w_hi, w_lo = tl.inline_asm_elementwise(PRMT_ASM, "=r,=r,=r,=r,r", [wb], dtype=(dt, dt),
                                                       is_pure=True, pack=4)
            elif LUT == 1:
                pair = tl.load(lut_ptr + wb)
                w_hi = (pair & 0xFFFF).to(tl.int16).to(dt, bitcast=True)
                w_lo = (pair >> 16).to(tl.int16).to(dt, bitcast=True)
            else:
                w_hi = tl.load(lut_ptr + (wb >> 4)).to(dt)
                w_lo = tl.load(lut_ptr + (wb & 15)).to(dt)
            xm = m_mask[:, None] & ok
            if X_SPLIT:  # x as it is: one contiguous load, even and odd columns split in registers
                x_even, x_odd = tl.split(tl.reshape(tl.load(x_row64 + b * 64, mask=xm, other=0.0), (BLOCK_M, 32, 2)))
            else:
                x_even = tl.load(x_row + b * 64, mask=xm, other=0.0)
                x_odd = tl.load(x_row + b * 64 + 32, mask=xm, other=0.0)
            if SCALE_W:  # the weights scaled in the compute dtype: the dots accumulate into acc as they go
                sw = s.to(dt)[:, None]
                acc = _mma(w_lo * sw, x_odd, _mma(w_hi * sw, x_even, acc, W_IS_A, IEEE), W_IS_A, IEEE)
            else:
                part = _mma(w_lo, x_odd, _mma(w_hi, x_even, tl.zeros_like(acc), W_IS_A, IEEE), W_IS_A, IEEE)
                acc += _scale_cols(part, s, W_IS_A)
    _store_tile(acc, rm, rn, m_mask, n_mask, M, N, pid_k, bias_ptr, out_ptr, W_IS_A, HAS_BIAS, IS_SPLIT)


@triton.jit
def _nf4_dequant_kernel(packed_ptr, absmax_ptr, qabs_ptr, code2_ptr, nested_ptr, offset, code_ptr, out_ptr,
                        blk0, n_blocks, BLOCKS: tl.constexpr, DOUBLE_QUANT: tl.constexpr):
    # BLOCKS quant blocks (32 bytes in, 64 values out each) per program; packed_ptr / out_ptr point at the
    # chunk's first byte / value, blk0 is the chunk's first quant block (for absmax and the nested index).
    rb = tl.program_id(0) * BLOCKS + tl.arange(0, BLOCKS)
    rj = tl.arange(0, 32)
    b_mask = rb < n_blocks
    wb = tl.load(packed_ptr + rb[:, None] * 32 + rj[None, :], mask=b_mask[:, None], other=0,
                 eviction_policy="evict_first")
    scale = _block_scale(absmax_ptr, qabs_ptr, code2_ptr, nested_ptr, offset, blk0 + rb, b_mask, DOUBLE_QUANT)
    hi = tl.load(code_ptr + (wb >> 4).to(tl.int32)) * scale[:, None]
    lo = tl.load(code_ptr + (wb & 15).to(tl.int32)) * scale[:, None]
    vals = tl.interleave(hi, lo)  # [BLOCKS, 64]: even columns from the high nibbles
    offs = rb[:, None] * 64 + tl.arange(0, 64)[None, :]
    tl.store(out_ptr + offs, vals.to(out_ptr.dtype.element_ty), mask=b_mask[:, None])


@triton.jit
def _nf4_dequant_grouped_kernel(packed_ptr, scale_ptr, code2_ptr, nested_ptr, offset, code_ptr, out_ptr, g0, N, K,
                                BLOCKS: tl.constexpr, DOUBLE_QUANT: tl.constexpr):
    # The kernel layout (vlmserve.quant.nf4_layout): program (i, j) writes 16-row group g0 + i, quant blocks
    # j * BLOCKS.., into out (rows counted from the chunk's first, g0 * 16). Each value gathers its byte (the gathers
    # hit L1: a 512-byte unit serves 1,024 values) so that the stores are contiguous rows.
    g = g0 + tl.program_id(0)
    k_blocks = K // 64
    rb = tl.program_id(1) * BLOCKS + tl.arange(0, BLOCKS)
    r = tl.arange(0, 16)
    c = tl.arange(0, 64)
    b_mask = rb < k_blocks
    # (row r, column c) of a unit: lane (r % 8) * 4 + (c >> 1) % 4, word c >> 4, byte (r >> 3) * 2 + c % 2; the
    # high nibble holds columns with c & 8 == 0, the low nibble column + 8
    o = ((r % 8) * 64 + (r >> 3) * 2)[:, None] + ((c >> 1) % 4 * 16 + (c >> 4) * 4 + c % 2)[None, :]     # [16, 64]
    unit = (g.to(tl.int64) * k_blocks + rb) * 512
    wb = tl.load(packed_ptr + unit[:, None, None] + o[None, :, :], mask=b_mask[:, None, None], other=0)
    nib = (wb >> (4 - (c & 8) // 2)[None, None, :]) & 15
    rows = g * 16 + r
    sc = tl.load(scale_ptr + rb[:, None] * N + rows[None, :], mask=b_mask[:, None], other=0)        # [BLOCKS, 16]
    if DOUBLE_QUANT:
        sc = tl.load(code2_ptr + sc.to(tl.int32)) * tl.load(nested_ptr + (rows[None, :] * k_blocks + rb[:, None]) // 256,
                                                            mask=b_mask[:, None], other=0.0) + offset
    vals = tl.load(code_ptr + nib.to(tl.int32)) * sc[:, :, None]
    offs = (g - g0).to(tl.int64) * 16 * K + r[None, :, None] * K + rb[:, None, None] * 64 + c[None, None, :]
    tl.store(out_ptr + offs, vals.to(out_ptr.dtype.element_ty), mask=b_mask[:, None, None])


# ---------------------------------------------------------------------------------------------- host side


@dataclass(frozen=True)
class Config:
    block_m: int  # GEMV: 1; dequant + cuBLAS: 0; tensor-core kernel: rows per tile (>= 16)
    block_n: int
    num_warps: int
    num_stages: int
    r: int = 4  # GEMV: quant blocks per step; tensor-core kernel: quant blocks unrolled per loop step
    waves: int = 2  # split-K: aim for this many programs per SM (1 = no split unless the grid is tiny)
    chunk_mib: int = 0  # dequant + cuBLAS: rows dequantized per step, in MiB of the compute dtype
    w_is_a: bool = True  # tensor-core kernel: the weight is the register (first) operand
    lut: int | None = None  # tensor-core path: _nf4_dot_kernel with this decoding (see the kernel) instead
    x_split: bool = False  # fused kernels: read x as it is and split even / odd columns in registers
    scale_w: bool = False  # dot kernel: scale the decoded weights (16-bit multiply) instead of each block's result
    # dot kernel: registers per thread at most (ptxas's .maxnreg), for more programs per SM than the compiler's own
    # allocation allows (0: the compiler's choice)
    maxnreg: int = 0
    # the Gluon ring kernel (gluon_nf4) on a weight in the kernel layout: block_n its BN, num_stages its ring DEPTH,
    # scale_w and waves as above; its row tile follows M (gluon_nf4.row_tile), block_m only names the bucket
    ring: bool = False

    @property
    def dequant(self) -> bool:
        return self.block_m == 0


def _dq(mib: int) -> Config:
    return Config(0, 0, 4, 1, chunk_mib=mib)


def _tc(bm: int, bn: int, warps: int, stages: int, r: int, waves: int = 2, w_is_a: bool = True,
        x_split: bool = False) -> Config:
    return Config(bm, bn, warps, stages, r=r, waves=waves, w_is_a=w_is_a, x_split=x_split)


def _ring(bm: int, bn: int, depth: int, waves: int, scale_w: bool = False) -> Config:
    return Config(bm, bn, 4, depth, r=1, waves=waves, scale_w=scale_w, ring=True)


def _dot(bm: int, bn: int, warps: int, stages: int, r: int, lut: int, waves: int = 2, w_is_a: bool = True,
         x_split: bool = False, scale_w: bool = False, maxnreg: int = 0) -> Config:
    return Config(bm, bn, warps, stages, r=r, waves=waves, w_is_a=w_is_a, lut=lut, x_split=x_split, scale_w=scale_w,
                  maxnreg=maxnreg)


# Small N (qkv, dense) need more programs than N / BLOCK_N to hide latency: the waves=8 variants split K more.
GEMV_CONFIGS = (Config(1, 32, 4, 3, r=4), Config(1, 64, 8, 3, r=4), Config(1, 16, 4, 3, r=8),
                Config(1, 64, 4, 2, r=2), Config(1, 128, 8, 2, r=2),
                Config(1, 16, 4, 3, r=4, waves=8), Config(1, 32, 4, 3, r=2, waves=8), Config(1, 16, 2, 4, r=2, waves=16))

# One row: the GEMV, and the register-table dot kernel on a 16-row tile with 15 rows masked. On an H100 a decode
# step's dot kernels at 16 rows took 4.6 ms against 5.4 for the GEMVs at one row (the same weights read): the tile
# may win at one row too (not yet timed there; the tuner decides per shape).
ONE_ROW_CONFIGS = GEMV_CONFIGS + (_dot(16, 128, 4, 3, 1, 3, waves=4, x_split=True),
                                  _dot(16, 64, 4, 3, 1, 3, waves=4, x_split=True),
                                  _dot(16, 256, 8, 3, 2, 3, waves=2, x_split=True, w_is_a=False))


# (BLOCK_M, BLOCK_N, warps, stages, r, w_is_a, scale_w) of a LUT 3 tile -> a register cap that fits one more program
# per SM than ptxas's own allocation, with no spills, in the serving case (8-bit absmax, N and K tiling evenly), found
# with bench/nf4_sass.py --even --double-quant --maxnreg on sm_90 (test_nf4_sass checks each). Nsight Compute found
# the kernels waiting on latency with 2-6 programs per SM; on an H100 the capped 64-row winners of session 10 were
# 2-9% faster than uncapped (bench/results/gpu_session_2026-12-05f, calls 7-8). The tuner decides per shape.
_REGISTER_CAPS = {(16, 128, 4, 3, 1, True, True): 80, (16, 64, 4, 3, 2, True, False): 72,
                  (16, 128, 4, 2, 2, True, True): 96, (16, 128, 4, 3, 2, False, False): 120,
                  (16, 128, 4, 3, 2, False, True): 128, (16, 256, 8, 3, 2, False, False): 128,
                  (32, 64, 4, 3, 2, True, False): 96, (32, 128, 4, 2, 2, True, True): 128,
                  (32, 128, 4, 3, 2, False, True): 168,
                  (64, 128, 4, 2, 2, True, True): 168, (64, 128, 4, 3, 2, False, True): 168}


def _cap_key(bm: int, c: Config) -> tuple:
    return bm, c.block_n, c.num_warps, c.num_stages, c.r, c.w_is_a, c.scale_w


def _tc_configs(bm: int) -> tuple[Config, ...]:
    """Candidates for 2..256 rows: dequant + cuBLAS in small chunks first (the default when tuning is off), then
    the fused kernels. Chosen from H100 grids (bench/nf4_kernel_sweep.py --grid at 16 and 64 rows on the decoder's
    five shapes, --suggest: every tile within 3% of a shape's winner): the dot kernel with the register-table
    decoding (LUT 3) and x read as it is beat the 16-entry table in memory (LUT 0) everywhere, by 25-40% (Nsight
    Compute had found LUT 0 bound by its L1 lookups); the block scale applied to the weights (scale_w) won at 64
    rows and on some shapes at 16. One LUT 0 tile and the tensor-core kernel stay for GPUs where the inline PTX does
    not build. The tensor-core kernel's pipelining stays off (num_stages 1: it prefetches one step ahead itself;
    Triton's made it 5-8x slower on an H200); the dot kernel leaves it to Triton."""
    lut3 = tuple(_dot(bm, bn, warps, stages, r, 3, waves=waves, x_split=True, w_is_a=a, scale_w=sw)
                 for bn, warps, stages, r, waves, a, sw in (
                     (128, 4, 3, 1, 4, True, False), (128, 4, 3, 1, 4, True, True), (64, 4, 3, 1, 4, True, False),
                     (64, 4, 3, 2, 2, True, False), (128, 4, 2, 2, 4, True, False), (128, 4, 2, 2, 4, True, True),
                     (128, 4, 3, 2, 4, False, False), (128, 4, 3, 2, 4, False, True), (32, 4, 3, 2, 8, False, False),
                     (256, 8, 3, 2, 2, False, False), (256, 8, 3, 2, 2, False, True)))
    caps = {c: _REGISTER_CAPS.get(_cap_key(bm, c)) for c in lut3}
    capped = tuple(replace(c, maxnreg=cap) for c, cap in caps.items() if cap)
    return ((_dq(4),) + lut3 + capped + (_dot(bm, 64, 4, 3, 2, 0, waves=8, x_split=True, w_is_a=False),
                                         _tc(bm, 64, 4, 1, 4, waves=4, x_split=True)))


# M <= 256 (decode batches, short prefills), by M bucket (16 rows is the smallest dot tile). Above 64 rows the
# 64-row tiles loop over M: fewer compiled variants for the engine's start-up.
TC_CONFIGS = {16: _tc_configs(16), 32: _tc_configs(32), 64: _tc_configs(64), 128: _tc_configs(64),
              256: _tc_configs(64)}
# M > 256 (prefill, vision): dequantize row chunks into the shared scratch and let cuBLAS multiply each. Small
# chunks stay in L2 between the dequant kernel and the GEMM; large ones mean fewer launches (eager prefill is
# bound by launches). Fused tiles of 64-128 x 128-256 reached 16-37 TFLOP/s on an H100 at 1.6k-6.4k rows, against
# 260-590 for these: not candidates. The first takes the whole scratch (256 MiB by default: one chunk per layer).
LARGE_M_CONFIGS = tuple(_dq(mib) for mib in (4096, 4, 2))
MAX_FUSED_M = 256

# Weights in the kernel layout (nf4_layout; every CUDA layer whose shape fits it, in a 16-bit compute dtype), 1..256
# rows: the Gluon ring kernel, by its row tile (16 rows up to 16, else 64-row tiles, as many as M needs), after
# dequant + cuBLAS (the reference the tuner checks the others against). From the H100 probe of session 11
# (bench/nf4_gluon_probe.py, the five decoder shapes): every winner within 3% at 16 and at 64 rows. BN 128 without
# scale_w at 64 rows spills (the float32 partial product doubles the accumulator): not a candidate.
RING_CONFIGS = {
    16: (_dq(4),) + tuple(_ring(16, bn, d, w, sw) for bn, d, w, sw in (
        (64, 4, 4, False), (128, 4, 4, False), (64, 4, 2, False), (128, 4, 2, False), (64, 8, 4, False),
        (128, 8, 4, False), (64, 4, 4, True), (128, 4, 4, True))),
    64: (_dq(4),) + tuple(_ring(64, bn, d, w, sw) for bn, d, w, sw in (
        (64, 4, 2, False), (64, 4, 4, False), (64, 4, 4, True), (128, 4, 4, True), (128, 8, 4, True),
        (64, 8, 4, True), (64, 4, 2, True), (128, 4, 2, True))),
}

_tuned: dict[tuple, Config] = {}


def _m_bucket(m: int) -> int:
    if m == 1:
        return 1
    return min(max(16, 1 << (m - 1).bit_length()), 8192)


@dataclass
class NF4Operand:
    """The tensors of one NF4 weight as the kernels read them ([N, K] weight, K % 64 == 0)."""

    packed: torch.Tensor  # uint8 [N*K/2]
    code: torch.Tensor  # float32 [16]
    n: int
    k: int
    absmax: torch.Tensor | None = None  # float32 [N*K/64]
    qabs: torch.Tensor | None = None  # uint8 [N*K/64] (double quant)
    code2: torch.Tensor | None = None  # float32 [256]
    nested: torch.Tensor | None = None  # float32 [ceil(N*K/64/256)]
    offset: float = 0.0
    # packed in the kernel layout (nf4_layout), absmax / qabs transposed to [K/64, N]; else bitsandbytes' order
    kernel_layout: bool = False

    @property
    def double_quant(self) -> bool:
        return self.qabs is not None

    def _per_dtype(self, kind: str, dtype: torch.dtype, make):
        """make(dtype), made once per (kind, dtype) for this weight."""
        made = self.__dict__.setdefault("_per_dtype_cache", {})
        if (kind, dtype) not in made:
            made[kind, dtype] = make(dtype)
        return made[kind, dtype]

    def pair_lut(self, dtype: torch.dtype) -> torch.Tensor:
        """int32 [256]: for byte b, the 16-bit pattern of code[b >> 4] in `dtype` (a 16-bit float type) in the low
        half and that of code[b & 15] in the high half (the dot kernel's LUT=1 decodes a byte with one lookup)."""
        def make(dt):
            bits = self.code.to(dt).view(torch.int16).to(torch.int64) & 0xFFFF
            byte = torch.arange(256, device=self.code.device)
            return _as_int32(bits[byte >> 4] | (bits[byte & 15] << 16))
        return self._per_dtype("pair_lut", dtype, make)

    def prmt_asm(self, dtype: torch.dtype) -> str:
        """The register-table decoding's PTX for this code book in `dtype` (the dot kernel's LUT=3)."""
        return self._per_dtype("prmt_asm", dtype, lambda dt: nf4_prmt.ptx(nf4_prmt.table_bits(self.code, dt)))

    def lut(self, dtype: torch.dtype) -> torch.Tensor:
        """The 16 code values in `dtype` (the dot kernel's LUT=0 looks nibbles up in it)."""
        return self._per_dtype("lut", dtype, lambda dt: self.code.to(dt).contiguous())


def _as_int32(bits: torch.Tensor) -> torch.Tensor:
    """Unsigned 32-bit patterns held in int64 as the int32 tensor with the same bits (what the kernels load)."""
    return torch.where(bits >= 1 << 31, bits - (1 << 32), bits).to(torch.int32).contiguous()


def supported(k: int, blocksize: int) -> bool:
    return blocksize == QBLOCK and k % QBLOCK == 0


# Which layout a fitting layer takes unless VLMSERVE_NF4_LAYOUT says. "kernel" since it was measured inside the model
# (H100, session 12, bench/results/gpu_session_2026-12-06a): NF4 decode per row 1.77 / 1.61 / 1.06x bf16 at batch 1 /
# 16 / 64, against 1.41 / 1.43 / 1.02x on bitsandbytes' layout in session 11.
DEFAULT_LAYOUT = "kernel"


def kernel_layout_fits(n: int, k: int, dtype: torch.dtype, device: torch.device) -> bool:
    """Whether a layer of this shape and compute dtype on `device` is run from the kernel layout (the Gluon ring
    kernel reads nothing else): with VLMSERVE_NF4_LAYOUT=kernel (or DEFAULT_LAYOUT), a 16-bit compute dtype, N and K
    multiples of 64, a GPU where Gluon builds. VLMSERVE_NF4_LAYOUT=bnb keeps bitsandbytes' layout and triton_nf4's own
    fused kernels."""
    layout = os.environ.get("VLMSERVE_NF4_LAYOUT", DEFAULT_LAYOUT)
    if layout not in ("kernel", "bnb"):
        raise ValueError(f"VLMSERVE_NF4_LAYOUT must be kernel or bnb, got {layout!r}")
    if layout == "bnb" or dtype not in (torch.bfloat16, torch.float16):
        return False
    from . import nf4_layout
    if not nf4_layout.fits(n, k) or device.type != "cuda":
        return False
    g = _gluon()
    return g is not None and g.usable(device)


_gluon_module = None


def _gluon():
    """vlmserve.quant.gluon_nf4, or None where this Triton has no Gluon."""
    global _gluon_module
    if _gluon_module is None:
        try:
            from . import gluon_nf4
            _gluon_module = gluon_nf4
        except ImportError:
            _gluon_module = False
    return _gluon_module or None


def dequantize_rows(w: NF4Operand, r0: int, r1: int, out: torch.Tensor) -> None:
    """Rows r0..r1 of W into the contiguous out [r1 - r0, K] (its dtype); in the kernel layout r0 and r1 are
    multiples of 16 (chunked's row chunks are of 64 on such weights, N % 64 == 0)."""
    if w.kernel_layout:
        if r0 % 16 or r1 % 16:
            raise ValueError(f"the kernel layout holds 16-row groups: rows {r0}..{r1} cannot be cut out")
        dq = w.double_quant
        scales = w.qabs if dq else w.absmax
        blocks = 4
        _nf4_dequant_grouped_kernel[((r1 - r0) // 16, triton.cdiv(w.k // QBLOCK, blocks))](
            w.packed, scales, w.code2 if dq else scales, w.nested if dq else scales, w.offset, w.code, out, r0 // 16,
            w.n, w.k, BLOCKS=blocks, DOUBLE_QUANT=dq, num_warps=4,
        )
        return
    blocks_per_row = w.k // QBLOCK
    blk0, n_blocks = r0 * blocks_per_row, (r1 - r0) * blocks_per_row
    dq = w.double_quant
    dummy = w.code
    blocks = 32
    _nf4_dequant_kernel[(triton.cdiv(n_blocks, blocks),)](
        w.packed[r0 * w.k // 2:], w.absmax if not dq else dummy, w.qabs if dq else dummy,
        w.code2 if dq else dummy, w.nested if dq else dummy, w.offset, w.code, out, blk0, n_blocks,
        BLOCKS=blocks, DOUBLE_QUANT=dq, num_warps=4,
    )


def _launch(x: torch.Tensor, w: NF4Operand, bias: torch.Tensor | None, out: torch.Tensor, cfg: Config,
            leave_splits: bool = False) -> torch.Tensor:
    """Runs cfg into `out`; returns `out`, or with leave_splits (never set with a bias: nf4_matmul) the float32
    partials [S, M, N] when the kernel split K, unsummed."""
    if cfg.dequant:
        chunked.chunked_linear(x, w.n, bias, lambda r0, r1, dst: dequantize_rows(w, r0, r1, dst),
                               cfg.chunk_mib << 20, out)
        return out
    target = (_ring_into if cfg.ring else _triton_into)(x, w, bias, out, cfg)
    if leave_splits and target is not out:
        return target
    add_splits(target, bias, out)
    return out


def _triton_into(x: torch.Tensor, w: NF4Operand, bias: torch.Tensor | None, out: torch.Tensor,
                 cfg: Config) -> torch.Tensor:
    """The Triton kernels on bitsandbytes' layout into `out`, or into the float32 partials they return."""
    if w.kernel_layout:
        raise ValueError(f"{cfg} reads bitsandbytes' layout; this weight is in the kernel layout (ring configs only)")
    m = x.shape[0]
    k_blocks = w.k // QBLOCK
    dq = w.double_quant
    dummy = w.code
    absmax = w.absmax if not dq else dummy
    qabs, code2, nested = (w.qabs, w.code2, w.nested) if dq else (dummy, dummy, dummy)
    has_bias = bias is not None
    bias_arg = bias if has_bias else dummy
    n_programs = triton.cdiv(m, cfg.block_m) * triton.cdiv(w.n, cfg.block_n)   # the GEMV: block_m 1, m 1
    split = _split_k(n_programs, triton.cdiv(k_blocks, cfg.r), num_sms(x.device), 4, cfg.waves)
    target = split_target(out, split)
    if m == 1 and cfg.block_m == 1:
        _nf4_gemv_kernel[(n_programs, split)](
            x, w.packed, absmax, qabs, code2, nested, w.offset, w.code, bias_arg, target, w.n, w.k,
            BLOCK_N=cfg.block_n, R=cfg.r, SPLIT_K=split, DOUBLE_QUANT=dq, HAS_BIAS=has_bias,
            num_warps=cfg.num_warps, num_stages=cfg.num_stages,
        )
    else:
        if cfg.block_m < 16 or cfg.block_n < 16:
            raise ValueError(f"tensor-core tiles need block_m, block_n >= 16, got {cfg}")
        # per quant block: the 32 even columns, then the 32 odd ones (one small copy; the kernel loads both halves
        # as contiguous vectors)
        if cfg.x_split:
            xp, stride_xm = x, x.stride(0)
        else:
            xp, stride_xm = x.reshape(m, k_blocks, 32, 2).transpose(2, 3).contiguous(), w.k  # any row stride
        if cfg.lut is not None:
            if cfg.lut in (1, 3) and x.element_size() != 2:
                raise ValueError("the byte-pair and register tables hold 16-bit codes: not for float32")
            lut = (w.pair_lut if cfg.lut == 1 else w.lut)(x.dtype)
            asm = w.prmt_asm(x.dtype) if cfg.lut == 3 else ""
            grid = (triton.cdiv(w.n, cfg.block_n), triton.cdiv(m, cfg.block_m), split)
            _nf4_dot_kernel[grid](
                xp, w.packed, absmax, qabs, code2, nested, w.offset, lut, bias_arg, target, m, w.n, w.k, stride_xm,
                split, BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, R=cfg.r, IS_SPLIT=split > 1,
                W_IS_A=cfg.w_is_a, LUT=cfg.lut, X_SPLIT=cfg.x_split, DOUBLE_QUANT=dq, HAS_BIAS=has_bias,
                IEEE=x.dtype == torch.float32, PRMT_ASM=asm, SCALE_W=cfg.scale_w,
                EVEN=w.n % cfg.block_n == 0 and k_blocks % cfg.r == 0, num_warps=cfg.num_warps,
                num_stages=cfg.num_stages, **({"maxnreg": cfg.maxnreg} if cfg.maxnreg else {}),
            )
        else:
            _nf4_tc_kernel[(n_programs, split)](
                xp, w.packed, absmax, qabs, code2, nested, w.offset, w.code, bias_arg, target, m, w.n, w.k,
                stride_xm, split, BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, R=cfg.r, IS_SPLIT=split > 1, GROUP_M=8,
                W_IS_A=cfg.w_is_a, X_SPLIT=cfg.x_split, DOUBLE_QUANT=dq, HAS_BIAS=has_bias,
                IEEE=x.dtype == torch.float32,
                num_warps=cfg.num_warps, num_stages=cfg.num_stages,
            )
    return target


def _ring_into(x: torch.Tensor, w: NF4Operand, bias: torch.Tensor | None, out: torch.Tensor,
               cfg: Config) -> torch.Tensor:
    """The Gluon ring kernel on the kernel layout into `out` (the bias added there when K is not split), or into the
    float32 partials it returns."""
    g = _gluon()
    if not w.kernel_layout or g is None or x.dtype not in (torch.bfloat16, torch.float16):
        raise ValueError(f"the ring kernel reads a 16-bit x and a weight in the kernel layout, got {x.dtype}, "
                         f"kernel_layout={w.kernel_layout}")
    p = g.plan(x.shape[0], w.n, w.k, cfg.block_n, cfg.num_stages, cfg.waves, num_sms(x.device))
    target = split_target(out, p.split)
    g.launch(x, w.packed, w.qabs if w.double_quant else w.absmax,
             (w.code2, w.nested, w.offset) if w.double_quant else None, w.n, bias if p.split == 1 else None, target,
             p, cfg.block_n, cfg.num_stages, cfg.scale_w, w.prmt_asm(x.dtype))
    return target


def candidates(m: int, w: NF4Operand | None = None, dtype: torch.dtype = torch.bfloat16) -> tuple[Config, ...]:
    """Tuning candidates for M rows of x in `dtype` times w; the first is the default when tuning is off or a graph is
    captured."""
    if w is not None and w.kernel_layout:
        if m > MAX_FUSED_M or dtype not in (torch.bfloat16, torch.float16):
            return LARGE_M_CONFIGS
        return RING_CONFIGS[_gluon().row_tile(m)]
    if m == 1:
        return ONE_ROW_CONFIGS
    if m <= MAX_FUSED_M:
        return TC_CONFIGS[_m_bucket(m)]
    return LARGE_M_CONFIGS


def agrees(out: torch.Tensor, ref: torch.Tensor) -> bool:
    """A candidate's output against the dequant + cuBLAS path's on the same input: both use the same dequantized
    values (code * absmax in float32, rounded once) and float32 accumulation, so only the order of additions
    differs; anything beyond that is a broken kernel on this GPU / Triton build."""
    return relative_max_error(out, ref) <= (1e-4 if ref.dtype == torch.float32 else 1e-2)


def tuning_key(m: int, w: NF4Operand, dtype: torch.dtype, has_bias: bool, leave_splits: bool = False) -> tuple:
    """What a tuned choice is kept under: (row bucket, N, K, dtype, double-quantized, bias, partials left to the
    consumer, kernel layout). A layer whose consumer sums the split-K partials does not pay the reduce kernel: its candidates are
    timed without it, which may favour a larger split."""
    return (_m_bucket(m), w.n, w.k, dtype, w.double_quant, has_bias, leave_splits, w.kernel_layout)


def _pick(x: torch.Tensor, w: NF4Operand, bias, out, leave_splits: bool = False) -> Config:
    m = x.shape[0]
    key = tuning_key(m, w, x.dtype, bias is not None, leave_splits)
    cfg = _tuned.get(key)
    if cfg is not None:
        return cfg
    cands = candidates(m, w, x.dtype)
    if x.device.type != "cuda" or capturing() or os.environ.get("VLMSERVE_NF4_TUNE", "1") == "0":
        return cands[0]
    disk = _disk_cache(x.device)
    stored = disk.get(_key_text(key))
    kept = next((c for c in cands if asdict(c) == stored), None) if stored else None
    if kept is not None:          # tuned by an earlier start on this GPU and build: no compiling and timing of the rest
        _tuned[key] = kept
        return kept
    ref = []

    def measure(cfg: Config) -> float:
        _launch(x, w, bias, out, cfg)
        if cfg.dequant and not ref:
            ref.append(out.clone())  # the dequant + cuBLAS path: the reference the fused candidates must match
        elif not cfg.dequant and ref and not agrees(out, ref[0]):
            raise Rejected("output differs from dequant + cuBLAS: not used")
        # Up to MAX_FUSED_M rows the call runs in decode steps, which the engine replays from CUDA graphs:
        # time graph replays, L2 flushed. Above, it runs in eager prefill: time it as called, launches included.
        if m <= MAX_FUSED_M:
            return graph_time_us(lambda: _launch(x, w, bias, out, cfg, leave_splits), **KERNEL_TIMING,
                                 device=x.device)
        return wall_time_us(lambda: _launch(x, w, bias, out, cfg))

    best, timings = fastest(cands, measure, cands[0])
    _tuned[key] = best
    _timings[key] = timings
    disk.put(_key_text(key), asdict(best))
    return best


_timings: dict[tuple, list] = {}
_disk: TuningCache | None = None


def _disk_cache(device: torch.device) -> TuningCache:
    """The choices of earlier starts, for this GPU model and this build of torch, Triton and CUDA."""
    global _disk
    if _disk is None:
        _disk = TuningCache(default_path(), f"{torch.cuda.get_device_name(device)} | torch {torch.__version__} | "
                                            f"triton {triton.__version__} | cuda {torch.version.cuda}")
    return _disk


def _key_text(key: tuple) -> str:
    """(row bucket, N, K, dtype, double-quantized, bias, partials left, kernel layout) as the file's key."""
    return "|".join(str(k) for k in key)


def nf4_matmul(x: torch.Tensor, w: NF4Operand, bias: torch.Tensor | None = None,
               config: Config | None = None, leave_splits: bool = False) -> torch.Tensor | Partials:
    """x [M, K] (bf16 / fp16 / fp32) @ W^T -> [M, N] in x's dtype. `config` forces block sizes (tests).
    leave_splits: when the chosen kernel splits K (and there is no bias), its partial sums unsummed, a Partials."""
    if x.dim() != 2 or x.shape[1] != w.k:
        raise ValueError(f"x must be [M, {w.k}], got {tuple(x.shape)}")
    if not supported(w.k, QBLOCK):
        raise ValueError(f"NF4 kernels need K % {QBLOCK} == 0, got K={w.k}")
    if x.stride(1) != 1:
        x = x.contiguous()
    out = torch.empty((x.shape[0], w.n), device=x.device, dtype=x.dtype)
    if x.shape[0] == 0:
        return out
    leave_splits = leave_splits and bias is None     # a layer with a bias sums its own partials, adding the bias
    cfg = config if config is not None else _pick(x, w, bias, out, leave_splits)
    res = _launch(x, w, bias, out, cfg, leave_splits)
    return res if res is out else Partials(res, x.dtype, tuple(out.shape))


def tuned_configs() -> dict[tuple, Config]:
    return dict(_tuned)


def tuning_timings() -> dict[tuple, list]:
    """Per tuned key: (config, microseconds or None, error or None) for every candidate tried."""
    return dict(_timings)
