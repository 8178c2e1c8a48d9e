"""Triton kernels for the model's element-wise producers (GPU; TRITON_INTERPRET=1 runs them on CPU).

The norms run one program per row (one token): they load it once, compute in float32 and write it in the compute
dtype or, with QUANT, as e4m3 plus the row's scale (amax / 448) for the FP8 GEMM that follows. The wide element-wise
ops (GELU, SwiGLU, plain quantization; rows up to 15,360) with QUANT hold a row of up to ONE_PASS_MAX columns in
registers (16 warps: 32 values a thread) and read it once; a wider row is walked in chunks, a first pass for the
absolute maximum and a second that writes (1.5-1.7x slower on an H100, bench/vision_mlp_check.py). Unquantized,
they run one program per (row, chunk). The prefill's rotary embedding is rotated in place, one program per (token, 16 heads).
`vlmserve.fused` and `vlmserve.rotary` hold the plain-torch definitions of the same functions.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from vlmserve.quant.fp8 import E4M3, E4M3_MAX, MIN_SCALE, FP8Act
from vlmserve.quant.partials import Partials

CHUNK = 2048   # columns per step of a row walked in two passes (QUANT, rows wider than ONE_PASS_MAX)
ONE_PASS_MAX = 16384   # QUANT rows up to this wide are read once (every GLM-4V-9B row: 15,360 at most)
PIECE = 1024   # columns per program otherwise: a decode step's one to 64 rows of 13,696 still make enough programs


@triton.jit
def _finish_row(y, out_ptr, q_ptr, s_ptr, row, cols, mask, K, QUANT: tl.constexpr):
    if QUANT:
        amax = tl.max(tl.where(mask, tl.abs(y), 0.0), axis=0)
        scale = tl.maximum(amax / 448.0, 1e-12)
        q = tl.minimum(tl.maximum(y / scale, -448.0), 448.0)
        tl.store(q_ptr + row * K + cols, q.to(tl.float8e4nv), mask=mask)
        tl.store(s_ptr + row, scale)
    else:
        tl.store(out_ptr + row * K + cols, y.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _row_in(ptr, row, stride, cols, mask, stride_split, SPLITS: tl.constexpr, PARTS: tl.constexpr,
            ROUND: tl.constexpr):
    """A row of an input in float32: loaded, or (PARTS) the sum of its SPLITS float32 partial rows in order,
    rounded to ROUND, exactly what the split-K reduce kernel would have stored (vlmserve.quant.partials). The
    splits are unrolled so that all their loads are in flight at once: a loop over them made one program per row wait
    for each in turn (on an H100 the consumers took 2-3x the reduce kernel they replaced)."""
    if PARTS:
        acc = tl.zeros(cols.shape, dtype=tl.float32)
        for sp in tl.static_range(SPLITS):
            acc += tl.load(ptr + sp * stride_split + row * stride + cols, mask=mask, other=0.0)
        return acc.to(ROUND).to(tl.float32)
    return tl.load(ptr + row * stride + cols, mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _rms_norm(x_ptr, w_ptr, out_ptr, q_ptr, s_ptr, K, stride_x, eps, QUANT: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < K
    x = tl.load(x_ptr + row * stride_x + cols, mask=mask, other=0.0).to(tl.float32)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    rstd = 1.0 / tl.sqrt(tl.sum(x * x, axis=0) / K + eps)
    _finish_row(x * rstd * w, out_ptr, q_ptr, s_ptr, row, cols, mask, K, QUANT)


@triton.jit
def _add_rms_norm(x_ptr, y_ptr, sum_ptr, w_ptr, out_ptr, q_ptr, s_ptr, K, stride_x, stride_y, eps, stride_ys,
                  QUANT: tl.constexpr, BLOCK: tl.constexpr, Y_PARTS: tl.constexpr = False, Y_SPLITS: tl.constexpr = 1):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < K
    x = tl.load(x_ptr + row * stride_x + cols, mask=mask, other=0.0).to(tl.float32)
    y = _row_in(y_ptr, row, stride_y, cols, mask, stride_ys, Y_SPLITS, Y_PARTS, sum_ptr.dtype.element_ty)
    s = (x + y).to(sum_ptr.dtype.element_ty)          # the residual stream keeps its dtype's rounding
    tl.store(sum_ptr + row * K + cols, s, mask=mask)
    s = s.to(tl.float32)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    rstd = 1.0 / tl.sqrt(tl.sum(s * s, axis=0) / K + eps)
    _finish_row(s * rstd * w, out_ptr, q_ptr, s_ptr, row, cols, mask, K, QUANT)


@triton.jit
def _add_layer_norm(x_ptr, y_ptr, sum_ptr, w_ptr, b_ptr, q_ptr, s_ptr, K, stride_x, stride_y, eps,
                    QUANT: tl.constexpr, BLOCK: tl.constexpr):
    """sum = x + LayerNorm(y); with QUANT also e4m3(sum)."""
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < K
    y = tl.load(y_ptr + row * stride_y + cols, mask=mask, other=0.0).to(tl.float32)
    mean = tl.sum(y, axis=0) / K
    d = tl.where(mask, y - mean, 0.0)
    rstd = 1.0 / tl.sqrt(tl.sum(d * d, axis=0) / K + eps)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    b = tl.load(b_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    x = tl.load(x_ptr + row * stride_x + cols, mask=mask, other=0.0).to(tl.float32)
    s = (x + d * rstd * w + b).to(sum_ptr.dtype.element_ty)
    tl.store(sum_ptr + row * K + cols, s, mask=mask)
    if QUANT:
        _finish_row(s.to(tl.float32), sum_ptr, q_ptr, s_ptr, row, cols, mask, K, QUANT)


@triton.jit
def _op(a, b, OP: tl.constexpr):
    if OP == 1:      # GELU, tanh form: x * sigmoid(2u) = 0.5x(1 + tanh(u)), u = sqrt(2/pi)(x + 0.044715x^3)
        # Only FP8's producers use it: at most 4.7e-4 from the erf form, against e4m3 steps of 1/16 of a value, and
        # 3x fewer instructions than libdevice's erf, which made this kernel issue-bound (44 instructions a value)
        # exp(-2u) = exp2(a * (c1 + c2 * a^2)) with -2 log2(e) folded into c1 = -2 log2(e) sqrt(2/pi), c2 = 0.044715 c1
        return a / (1.0 + tl.exp2(a * (-2.302208198144325 - 0.1029432395800235 * a * a)))
    elif OP == 2:    # SwiGLU: silu(a) * b
        return a / (1.0 + tl.exp(-a)) * b
    else:            # identity
        return a


@triton.jit
def _elementwise(a_ptr, b_ptr, row, stride_a, stride_b, cols, mask, stride_split, OP: tl.constexpr,
                 SPLITS: tl.constexpr, PARTS: tl.constexpr, ROUND: tl.constexpr):
    a = _row_in(a_ptr, row, stride_a, cols, mask, stride_split, SPLITS, PARTS, ROUND)
    b = a
    if OP == 2:
        b = _row_in(b_ptr, row, stride_b, cols, mask, stride_split, SPLITS, PARTS, ROUND)
    return _op(a, b, OP)


@triton.jit
def _wide_rows(a_ptr, b_ptr, out_ptr, q_ptr, s_ptr, K, stride_a, stride_b, stride_split, OP: tl.constexpr,
               QUANT: tl.constexpr, BLOCK: tl.constexpr, PARTS: tl.constexpr = False, SPLITS: tl.constexpr = 1,
               ROUND: tl.constexpr = tl.float32, ONE_PASS: tl.constexpr = False):
    # PARTS: a and b are split-K partials (SPLITS rows apart by stride_split), summed and rounded to ROUND.
    # QUANT needs the whole row's maximum: one program per row, walking it twice. Otherwise one program per (row,
    # chunk), so that a decode step's few rows still spread over the GPU.
    row = tl.program_id(0).to(tl.int64)
    offs = tl.arange(0, BLOCK)
    if QUANT and ONE_PASS:   # the whole row (K <= BLOCK) at once: one read of the inputs, exp once per value
        mask = offs < K
        y = _elementwise(a_ptr, b_ptr, row, stride_a, stride_b, offs, mask, stride_split, OP, SPLITS, PARTS, ROUND)
        _finish_row(y, out_ptr, q_ptr, s_ptr, row, offs, mask, K, QUANT)
    elif QUANT:
        peak = tl.zeros([BLOCK], dtype=tl.float32)
        for start in range(0, K, BLOCK):
            cols = start + offs
            mask = cols < K
            y = _elementwise(a_ptr, b_ptr, row, stride_a, stride_b, cols, mask, stride_split, OP, SPLITS, PARTS,
                             ROUND)
            peak = tl.maximum(peak, tl.where(mask, tl.abs(y), 0.0))
        scale = tl.maximum(tl.max(peak, axis=0) / 448.0, 1e-12)
        for start in range(0, K, BLOCK):
            cols = start + offs
            mask = cols < K
            y = _elementwise(a_ptr, b_ptr, row, stride_a, stride_b, cols, mask, stride_split, OP, SPLITS, PARTS,
                             ROUND)
            q = tl.minimum(tl.maximum(y / scale, -448.0), 448.0)
            tl.store(q_ptr + row * K + cols, q.to(tl.float8e4nv), mask=mask)
        tl.store(s_ptr + row, scale)
    else:
        cols = tl.program_id(1) * BLOCK + offs
        mask = cols < K
        y = _elementwise(a_ptr, b_ptr, row, stride_a, stride_b, cols, mask, stride_split, OP, SPLITS, PARTS, ROUND)
        tl.store(out_ptr + row * K + cols, y.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def rotate(x, swapped, c, s):
    """x * c + pair_swap(x) * s, each product and the sum rounded to x's dtype, as vlmserve.rotary.apply_rotary's
    three ops round them (bf16 x bf16 products are exact in float32, so the result is the same bit for bit; launch
    with enable_fp_fusion=False, or the second product and the sum become one FMA). The prefill's _rotate_rows and
    the engine's decode attention both rotate with it."""
    a = (x.to(tl.float32) * c.to(tl.float32)).to(x.dtype)
    b = (swapped.to(tl.float32) * s.to(tl.float32)).to(x.dtype)
    return (a.to(tl.float32) + b.to(tl.float32)).to(x.dtype)


@triton.jit
def _rotate_rows(x_ptr, c_ptr, s_ptr, stride_t, n_heads, D: tl.constexpr, BLOCK_H: tl.constexpr):
    """In place, for one token (program 0) and a block of heads (program 1): `rotate` over its q and k heads."""
    t = tl.program_id(0).to(tl.int64)
    h = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
    d = tl.arange(0, D)
    mask = (h < n_heads)[:, None]
    at = x_ptr + t * stride_t + h[:, None] * D
    x = tl.load(at + d[None, :], mask=mask, other=0.0)
    swapped = tl.load(at + (d ^ 1)[None, :], mask=mask, other=0.0)     # the pair partner of dim i is dim i ^ 1
    c = tl.load(c_ptr + t * D + d)[None, :]
    sn = tl.load(s_ptr + t * D + d)[None, :]
    tl.store(at + d[None, :], rotate(x, swapped, c, sn), mask=mask)


# ---- launchers -------------------------------------------------------------------------------------
def _rows(x: torch.Tensor) -> torch.Tensor:
    flat = x.reshape(-1, x.shape[-1])
    return flat if flat.stride(-1) == 1 else flat.contiguous()


def _whole_row(K: int) -> dict:
    block = triton.next_power_of_2(K)
    return {"BLOCK": block, "num_warps": 4 if block <= 2048 else 8 if block <= 8192 else 16}


def _quant_out(M: int, K: int, device):
    return torch.empty(M, K, dtype=E4M3, device=device), torch.empty(M, 1, dtype=torch.float32, device=device)


def _result(out, q, s, shape, quantize: bool):
    return FP8Act(q, s, shape) if quantize else out.view(shape)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float, quantize: bool = False):
    flat = _rows(x)
    M, K = flat.shape
    out = q = s = None
    if quantize:
        q, s = _quant_out(M, K, x.device)
    else:
        out = torch.empty(M, K, dtype=x.dtype, device=x.device)
    if M:
        _rms_norm[(M,)](flat, weight, out, q, s, K, flat.stride(0), eps, QUANT=quantize, **_whole_row(K))
    return _result(out, q, s, tuple(x.shape), quantize)


def _rows_or_parts(y) -> tuple[torch.Tensor, int, int, int, bool]:
    """(flat rows or partials, row stride, splits, split stride, are partials) of an input."""
    if isinstance(y, Partials):
        return y.parts, y.parts.stride(1), y.parts.shape[0], y.parts.stride(0), True
    fy = _rows(y)
    return fy, fy.stride(0), 1, 0, False


def add_rms_norm(x: torch.Tensor, y, weight: torch.Tensor, eps: float, quantize: bool = False):
    fx = _rows(x)
    fy, stride_y, splits, stride_ys, parts = _rows_or_parts(y)
    if parts and y.dtype != x.dtype:
        raise ValueError(f"partials in {y.dtype} added to a residual in {x.dtype}")
    M, K = fx.shape
    total = torch.empty(M, K, dtype=x.dtype, device=x.device)
    out = q = s = None
    if quantize:
        q, s = _quant_out(M, K, x.device)
    else:
        out = torch.empty(M, K, dtype=x.dtype, device=x.device)
    if M:
        _add_rms_norm[(M,)](fx, fy, total, weight, out, q, s, K, fx.stride(0), stride_y, eps, stride_ys,
                            QUANT=quantize, Y_PARTS=parts, Y_SPLITS=splits, **_whole_row(K))
    return total.view(x.shape), _result(out, q, s, tuple(x.shape), quantize)


def add_layer_norm(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float,
                   quantize: bool = False):
    fx, fy = _rows(x), _rows(y)
    M, K = fx.shape
    total = torch.empty(M, K, dtype=x.dtype, device=x.device)
    q = s = None
    if quantize:
        q, s = _quant_out(M, K, x.device)
    if M:
        _add_layer_norm[(M,)](fx, fy, total, weight, bias, q, s, K, fx.stride(0), fy.stride(0), eps,
                              QUANT=quantize, **_whole_row(K))
    return (total.view(x.shape), FP8Act(q, s, tuple(x.shape))) if quantize else total.view(x.shape)


def _wide(op: int, a, b, quantize: bool):
    """a, b: tensors, or (both) Partials of the same split count."""
    fa, stride_a, splits, stride_split, parts = _rows_or_parts(a)
    fb, stride_b, b_splits, b_stride_split, _ = _rows_or_parts(a if b is None else b)
    if (b_splits, b_stride_split) != (splits, stride_split):
        raise ValueError("both inputs must be tensors, or partials of one split-K output")
    M, K = fa.shape[-2:]
    out = q = s = None
    if quantize:
        q, s = _quant_out(M, K, fa.device)
    else:
        out = torch.empty(M, K, dtype=a.dtype, device=fa.device)
    if not M:
        return _result(out, q, s, tuple(a.shape), quantize)
    whole = triton.next_power_of_2(K)
    block = (whole if whole <= ONE_PASS_MAX else CHUNK) if quantize else min(PIECE, whole)
    _wide_rows[(M, 1 if quantize else triton.cdiv(K, block))](
        fa, fb, out, q, s, K, stride_a, stride_b, stride_split, OP=op, QUANT=quantize, BLOCK=block, PARTS=parts,
        SPLITS=splits, ROUND=_TL_DTYPE[a.dtype] if parts else tl.float32, ONE_PASS=quantize and block >= K,
        num_warps=max(4, min(16, block // 1024)))
    return _result(out, q, s, tuple(a.shape), quantize)


_TL_DTYPE = {torch.bfloat16: tl.bfloat16, torch.float16: tl.float16, torch.float32: tl.float32}


def gelu(h: torch.Tensor, quantize: bool = False):
    return _wide(1, h, None, quantize)


def swiglu(gate, up, quantize: bool = False):
    return _wide(2, gate, up, quantize)


def quantize_rows(x: torch.Tensor) -> FP8Act:
    return _wide(0, x, None, True)


def rotate_(x: torch.Tensor, c: torch.Tensor, s: torch.Tensor) -> bool:
    """Rotates x [B, T, heads, D] in place by factors c, s [B, T, 1, D] (vlmserve.rotary.RotaryFactors) and returns
    True; False, touching nothing, where the layout is not the one this kernel takes (each token's heads contiguous,
    tokens evenly strided, the factors contiguous in x's dtype)."""
    B, T, H, D = x.shape
    if not (x.stride(3) == 1 and x.stride(2) == D and x.stride(0) == T * x.stride(1) and D == triton.next_power_of_2(D)
            and c.is_contiguous() and s.is_contiguous() and c.dtype == s.dtype == x.dtype and c.shape == (B, T, 1, D)
            and s.shape == c.shape):
        return False
    if B * T:
        block_h = min(16, triton.next_power_of_2(H))
        # no FMA contraction: the second product is rounded before the sum, as torch rounds it
        _rotate_rows[(B * T, triton.cdiv(H, block_h))](x, c, s, x.stride(1), H, D=D, BLOCK_H=block_h, num_warps=4,
                                                       enable_fp_fusion=False)
    return True


assert E4M3_MAX == 448.0 and MIN_SCALE == 1e-12   # the kernels spell these out
