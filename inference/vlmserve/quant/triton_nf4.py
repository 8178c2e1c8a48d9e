"""NF4 matmul on the GPU (Triton): out[M, N] = x[M, K] @ dequant(W)[N, K]^T + bias.

Requires K % 64 == 0 (true for every GLM-4V-9B layer), so each 64-wide K tile of a row is one quant
block (one absmax) and, K being even, the high nibble of every byte is an even column, the low nibble the
next odd column. No 16-bit copy of a whole weight is ever written.

Paths (picked by `nf4_matmul` from M, by timing candidates on first use):
- M == 1: GEMV — CUDA-core FMAs on [BLOCK_N, R, 32] byte tiles (R quant blocks per step), dequantized in
  registers, split-K so that even N = 4096 fills the GPU (decode at batch 1: memory-bound, reads 1/4 of bf16);
- M > 1: dequantize W in row chunks into a shared scratch buffer and multiply each chunk with cuBLAS
  (vlmserve.quant.chunked; prefill, vision, batched decode). For 2 <= M <= 16 the tensor-core kernel
  (dequantized tile as the register operand, split-K) is timed against it too and used where faster.
Split-K partials go to a float32 scratch [SPLIT_K, M, N] and one reduce kernel adds them and the bias in
a fixed order (deterministic, unlike atomics).

Block sizes and paths are chosen per (M bucket, N, K, dtype) by timing the candidates' GPU time on first use
(skipped while a CUDA graph is being captured: the first candidate is used then).
Import this module only where Triton exists; vlmserve.quant.linear imports it lazily.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from . import chunked

QBLOCK = 64  # NF4 block size the kernels assume
NESTED_QBLOCK = 256


@triton.jit
def _block_scale(absmax_ptr, qabs_ptr, code2_ptr, nested_ptr, offset, blk, mask, DOUBLE_QUANT: tl.constexpr):
    if DOUBLE_QUANT:
        q = tl.load(qabs_ptr + blk, mask=mask, other=0).to(tl.int32)
        s = tl.load(code2_ptr + q) * tl.load(nested_ptr + blk // 256, mask=mask, other=0.0) + offset
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
def _nf4_mm_kernel(
    x_ptr, packed_ptr, absmax_ptr, qabs_ptr, code2_ptr, nested_ptr, offset, code_ptr, bias_ptr, out_ptr,
    M, N, K, stride_xm,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, SPLIT_K: tl.constexpr, GROUP_M: tl.constexpr,
    X_MODE: tl.constexpr, DOUBLE_QUANT: tl.constexpr, HAS_BIAS: tl.constexpr, IEEE: tl.constexpr,
):
    # Computes the transposed tile out^T[BLOCK_N, BLOCK_M] = W_tile @ x_tile^T: the dequantized weight,
    # made in registers, is the register operand of the tensor-core op, x^T comes through shared memory.
    HALF: tl.constexpr = 32
    pid = tl.program_id(0)
    pid_k = tl.program_id(1)
    num_m = tl.cdiv(M, BLOCK_M)
    num_n = tl.cdiv(N, BLOCK_N)
    # Grouped order: GROUP_M row-tiles sweep the N tiles together, so W tiles are reused from L2.
    in_group = GROUP_M * num_n
    first_m = (pid // in_group) * GROUP_M
    group_rows = tl.minimum(num_m - first_m, GROUP_M)
    pid_m = first_m + (pid % in_group) % group_rows
    pid_n = (pid % in_group) // group_rows

    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rj = tl.arange(0, HALF)
    rk = tl.arange(0, 64)
    m_mask = rm < M
    n_mask = rn < N
    k_tiles = K // 64
    per_split = tl.cdiv(k_tiles, SPLIT_K)
    t_begin = pid_k * per_split
    t_end = tl.minimum(t_begin + per_split, k_tiles)
    w_ptrs = packed_ptr + rn[:, None] * (K // 2) + rj[None, :]
    x_rows = x_ptr + rm[:, None] * stride_xm
    blk_base = rn * k_tiles
    dt = x_ptr.dtype.element_ty
    acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    for t in range(t_begin, t_end):
        wb = tl.load(w_ptrs + t * HALF, mask=n_mask[:, None], other=0)
        scale = _block_scale(absmax_ptr, qabs_ptr, code2_ptr, nested_ptr, offset, blk_base + t, n_mask, DOUBLE_QUANT)
        w_hi = (tl.load(code_ptr + (wb >> 4).to(tl.int32)) * scale[:, None]).to(dt)  # columns k0, k0+2, ...
        w_lo = (tl.load(code_ptr + (wb & 15).to(tl.int32)) * scale[:, None]).to(dt)  # columns k0+1, k0+3, ...
        k0 = t * 64
        if X_MODE == 1:
            # Contiguous x tile, split into even/odd columns in registers.
            xk = tl.load(x_rows + k0 + rk[None, :], mask=m_mask[:, None], other=0.0)
            x_even, x_odd = tl.split(tl.reshape(xk, (BLOCK_M, HALF, 2)))
        else:
            # Strided loads of the even and odd columns.
            x_even = tl.load(x_rows + k0 + 2 * rj[None, :], mask=m_mask[:, None], other=0.0)
            x_odd = tl.load(x_rows + k0 + 2 * rj[None, :] + 1, mask=m_mask[:, None], other=0.0)
        if IEEE:
            acc = tl.dot(w_hi, tl.trans(x_even), acc, input_precision="ieee")
            acc = tl.dot(w_lo, tl.trans(x_odd), acc, input_precision="ieee")
        else:
            acc = tl.dot(w_hi, tl.trans(x_even), acc)
            acc = tl.dot(w_lo, tl.trans(x_odd), acc)
    out_mask = n_mask[:, None] & m_mask[None, :]
    if SPLIT_K == 1:
        if HAS_BIAS:
            acc += tl.load(bias_ptr + rn, mask=n_mask, other=0.0).to(tl.float32)[:, None]
        tl.store(out_ptr + rm[None, :] * N + rn[:, None], acc.to(out_ptr.dtype.element_ty), mask=out_mask)
    else:
        tl.store(out_ptr + pid_k * M * N + rm[None, :] * N + rn[:, None], acc, mask=out_mask)


@triton.jit
def _splitk_reduce_kernel(part_ptr, bias_ptr, out_ptr, MN, N,
                          SPLIT_K: tl.constexpr, BLOCK: tl.constexpr, HAS_BIAS: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < MN
    acc = tl.zeros((BLOCK,), dtype=tl.float32)
    for s in tl.static_range(SPLIT_K):
        acc += tl.load(part_ptr + s * MN + offs, mask=mask, other=0.0)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + offs % N, mask=mask, other=0.0).to(tl.float32)
    tl.store(out_ptr + offs, acc.to(out_ptr.dtype.element_ty), mask=mask)


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


# ---------------------------------------------------------------------------------------------- host side


@dataclass(frozen=True)
class Config:
    block_m: int  # GEMV: 1; dequant + cuBLAS: 0
    block_n: int
    num_warps: int
    num_stages: int
    x_mode: int = 0  # tensor-core kernel: 0 strided even/odd x loads, 1 contiguous load split in registers
    r: int = 4  # GEMV: quant blocks per step
    waves: int = 2  # split-K paths: aim for this many programs per SM
    chunk_mib: int = 0  # dequant + cuBLAS: rows dequantized per step, in MiB of the compute dtype

    @property
    def dequant(self) -> bool:
        return self.block_m == 0


def _dq(mib: int) -> Config:
    return Config(0, 0, 4, 1, chunk_mib=mib)


# Small N (qkv, dense) need more programs than N / BLOCK_N to hide latency: the waves=8 variants split K more.
GEMV_CONFIGS = (Config(1, 32, 4, 3, r=4), Config(1, 64, 8, 3, r=4), Config(1, 16, 4, 3, r=8),
                Config(1, 64, 4, 2, r=2), Config(1, 128, 8, 2, r=2),
                Config(1, 16, 4, 3, r=4, waves=8), Config(1, 32, 4, 3, r=2, waves=8), Config(1, 16, 2, 4, r=2, waves=16))
SMALL_M_CONFIGS = (Config(16, 64, 4, 4), Config(16, 128, 4, 4), Config(16, 128, 8, 3), Config(16, 64, 4, 4, 1))
# Chunk sizes: small chunks stay in L2 between the dequant kernel and the GEMM (what matters when the GEMM
# is memory-bound, small M); large ones mean fewer, wider GEMMs (prefill).
DEQUANT_CONFIGS = tuple(_dq(mib) for mib in (16, 8, 4, 2))
# The tensor-core kernel as a tiled GEMM: 5-7x slower than dequant + cuBLAS for M >= 512 on an H100, so it is
# not a tuning candidate; kept for explicit configs (kernel tests) and GPUs where cuBLAS is unavailable.
PREFILL_CONFIGS = tuple(
    Config(bm, bn, w, s, xm)
    for xm in (0, 1)
    for bm, bn, w, s in ((128, 128, 8, 3), (64, 128, 4, 4), (128, 256, 8, 3), (64, 256, 8, 3))
)

_tuned: dict[tuple, Config] = {}
_sm_count: dict[int, int] = {}


def _num_sms(device: torch.device) -> int:
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


def _m_bucket(m: int) -> int:
    if m <= 16:
        return m if m == 1 else 16
    return min(1 << (m - 1).bit_length(), 8192)


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

    @property
    def double_quant(self) -> bool:
        return self.qabs is not None


def supported(k: int, blocksize: int) -> bool:
    return blocksize == QBLOCK and k % QBLOCK == 0


def dequantize_rows(w: NF4Operand, r0: int, r1: int, out: torch.Tensor) -> None:
    """Rows r0..r1 of W into the contiguous out [r1 - r0, K] (its dtype)."""
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


def _launch(x: torch.Tensor, w: NF4Operand, bias: torch.Tensor | None, out: torch.Tensor, cfg: Config) -> None:
    if cfg.dequant:
        chunked.chunked_linear(x, w.n, bias, lambda r0, r1, dst: dequantize_rows(w, r0, r1, dst),
                               cfg.chunk_mib << 20, out)
        return
    m = x.shape[0]
    k_tiles = w.k // QBLOCK
    dq = w.double_quant
    dummy = w.code
    absmax = w.absmax if not dq else dummy
    qabs, code2, nested = (w.qabs, w.code2, w.nested) if dq else (dummy, dummy, dummy)
    has_bias = bias is not None
    bias_arg = bias if has_bias else dummy
    n_programs = triton.cdiv(m, cfg.block_m) * triton.cdiv(w.n, cfg.block_n)
    k_steps = k_tiles if m > 1 else triton.cdiv(k_tiles, cfg.r)
    split = _split_k(n_programs, k_steps, _num_sms(x.device), 8 if m > 1 else 4, cfg.waves) if m <= 16 else 1
    target = out if split == 1 else torch.empty((split, m, w.n), device=x.device, dtype=torch.float32)
    if m == 1:
        grid = (triton.cdiv(w.n, cfg.block_n), split)
        _nf4_gemv_kernel[grid](
            x, w.packed, absmax, qabs, code2, nested, w.offset, w.code, bias_arg, target, w.n, w.k,
            BLOCK_N=cfg.block_n, R=cfg.r, SPLIT_K=split, DOUBLE_QUANT=dq, HAS_BIAS=has_bias,
            num_warps=cfg.num_warps, num_stages=cfg.num_stages,
        )
    else:
        grid = (n_programs, split)
        _nf4_mm_kernel[grid](
            x, w.packed, absmax, qabs, code2, nested, w.offset, w.code, bias_arg, target, m, w.n, w.k, x.stride(0),
            BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, SPLIT_K=split, GROUP_M=8, X_MODE=cfg.x_mode,
            DOUBLE_QUANT=dq, HAS_BIAS=has_bias, IEEE=x.dtype == torch.float32,
            num_warps=cfg.num_warps, num_stages=cfg.num_stages,
        )
    if split > 1:
        mn = m * w.n
        block = 1024
        _splitk_reduce_kernel[(triton.cdiv(mn, block),)](
            target, bias_arg, out, mn, w.n, SPLIT_K=split, BLOCK=block, HAS_BIAS=has_bias, num_warps=4,
        )


def candidates(m: int) -> tuple[Config, ...]:
    """Tuning candidates for M rows; the first is the default when tuning is off or a graph is captured."""
    if m == 1:
        return GEMV_CONFIGS
    return DEQUANT_CONFIGS[1:] + SMALL_M_CONFIGS if m <= 16 else DEQUANT_CONFIGS


def _capturing() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()


def _pick(x: torch.Tensor, w: NF4Operand, bias, out) -> Config:
    m = x.shape[0]
    key = (_m_bucket(m), w.n, w.k, x.dtype, w.double_quant, bias is not None)
    cfg = _tuned.get(key)
    if cfg is not None:
        return cfg
    cands = candidates(m)
    if x.device.type != "cuda" or _capturing() or os.environ.get("VLMSERVE_NF4_TUNE", "1") == "0":
        return cands[0]
    best, best_t = cands[0], float("inf")
    for cfg in cands:
        try:
            _launch(x, w, bias, out, cfg)  # compile + warm
        except Exception:  # a config that does not fit this GPU (shared memory, registers): skip it
            continue
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        reps = 10
        # GPU time, not launch time: the GPU sleeps while the calls are queued behind it, so candidates with
        # more (cheap) launches are not charged for Python overhead; decode replays them from CUDA graphs.
        torch.cuda._sleep(20_000_000)
        start.record()
        for _ in range(reps):
            _launch(x, w, bias, out, cfg)
        end.record()
        end.synchronize()
        t = start.elapsed_time(end) / reps
        if t < best_t:
            best, best_t = cfg, t
    _tuned[key] = best
    return best


def nf4_matmul(x: torch.Tensor, w: NF4Operand, bias: torch.Tensor | None = None,
               config: Config | None = None) -> torch.Tensor:
    """x [M, K] (bf16 / fp16 / fp32) @ W^T -> [M, N] in x's dtype. `config` forces block sizes (tests)."""
    if x.dim() != 2 or x.shape[1] != w.k:
        raise ValueError(f"x must be [M, {w.k}], got {tuple(x.shape)}")
    if not supported(w.k, QBLOCK):
        raise ValueError(f"NF4 kernels need K % {QBLOCK} == 0, got K={w.k}")
    if x.stride(1) != 1:
        x = x.contiguous()
    out = torch.empty((x.shape[0], w.n), device=x.device, dtype=x.dtype)
    if x.shape[0] == 0:
        return out
    cfg = config if config is not None else _pick(x, w, bias, out)
    _launch(x, w, bias, out, cfg)
    return out


def tuned_configs() -> dict[tuple, Config]:
    return dict(_tuned)
