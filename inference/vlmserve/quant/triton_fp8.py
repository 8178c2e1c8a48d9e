"""Triton kernels that end an op with per-token e4m3 quantization (GPU; TRITON_INTERPRET=1 runs them on CPU).

Each kernel handles one row (one token) per program: it loads the row once, computes the op in float32,
takes the row's absolute maximum, and writes the e4m3 row and its scale (amax / 448), so the FP8 GEMM
that follows reads one byte per element and no separate quantization pass exists. The plain-torch
versions in `fp8.py` define the same functions (the CPU path and the tests' reference).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from vlmserve.quant.fp8 import E4M3, E4M3_MAX, MIN_SCALE, FP8Act


@triton.jit
def _store_e4m3(y, q_ptr, s_ptr, row, cols, mask, K):
    amax = tl.max(tl.where(mask, tl.abs(y), 0.0), axis=0)
    scale = tl.maximum(amax / 448.0, 1e-12)
    q = tl.minimum(tl.maximum(y / scale, -448.0), 448.0)
    tl.store(q_ptr + row * K + cols, q.to(tl.float8e4nv), mask=mask)
    tl.store(s_ptr + row, scale)


@triton.jit
def _quant_rows(x_ptr, q_ptr, s_ptr, K, stride_x, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < K
    x = tl.load(x_ptr + row * stride_x + cols, mask=mask, other=0.0).to(tl.float32)
    _store_e4m3(x, q_ptr, s_ptr, row, cols, mask, K)


@triton.jit
def _rms_norm_quant(x_ptr, w_ptr, q_ptr, s_ptr, K, stride_x, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < K
    x = tl.load(x_ptr + row * stride_x + cols, mask=mask, other=0.0).to(tl.float32)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    rstd = 1.0 / tl.sqrt(tl.sum(x * x, axis=0) / K + eps)
    _store_e4m3(x * rstd * w, q_ptr, s_ptr, row, cols, mask, K)


@triton.jit
def _add_rms_norm_quant(x_ptr, y_ptr, out_ptr, w_ptr, q_ptr, s_ptr, K, stride_x, stride_y, eps,
                        BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < K
    x = tl.load(x_ptr + row * stride_x + cols, mask=mask, other=0.0).to(tl.float32)
    y = tl.load(y_ptr + row * stride_y + cols, mask=mask, other=0.0).to(tl.float32)
    s = (x + y).to(out_ptr.dtype.element_ty)          # the residual stream keeps its dtype's rounding
    tl.store(out_ptr + row * K + cols, s, mask=mask)
    s = s.to(tl.float32)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0).to(tl.float32)
    rstd = 1.0 / tl.sqrt(tl.sum(s * s, axis=0) / K + eps)
    _store_e4m3(s * rstd * w, q_ptr, s_ptr, row, cols, mask, K)


@triton.jit
def _add_layer_norm_quant(x_ptr, y_ptr, out_ptr, w_ptr, b_ptr, q_ptr, s_ptr, K, stride_x, stride_y, eps,
                          BLOCK: tl.constexpr):
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
    s = (x + d * rstd * w + b).to(out_ptr.dtype.element_ty)
    tl.store(out_ptr + row * K + cols, s, mask=mask)
    _store_e4m3(s.to(tl.float32), q_ptr, s_ptr, row, cols, mask, K)


@triton.jit
def _gelu_quant(h_ptr, q_ptr, s_ptr, K, stride_h, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < K
    h = tl.load(h_ptr + row * stride_h + cols, mask=mask, other=0.0).to(tl.float32)
    g = 0.5 * h * (1.0 + tl.math.erf(h * 0.7071067811865476))
    _store_e4m3(g, q_ptr, s_ptr, row, cols, mask, K)


@triton.jit
def _swiglu_quant(g_ptr, u_ptr, q_ptr, s_ptr, K, stride_g, stride_u, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < K
    gate = tl.load(g_ptr + row * stride_g + cols, mask=mask, other=0.0).to(tl.float32)
    up = tl.load(u_ptr + row * stride_u + cols, mask=mask, other=0.0).to(tl.float32)
    y = gate / (1.0 + tl.exp(-gate)) * up
    _store_e4m3(y, q_ptr, s_ptr, row, cols, mask, K)


# ---- launchers -------------------------------------------------------------------------------------
def _rows(x: torch.Tensor) -> torch.Tensor:
    flat = x.reshape(-1, x.shape[-1])
    return flat if flat.stride(-1) == 1 else flat.contiguous()


def _launch_cfg(K: int) -> dict:
    block = triton.next_power_of_2(K)
    return {"BLOCK": block, "num_warps": 4 if block <= 2048 else 8 if block <= 8192 else 16}


def _outputs(M: int, K: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.empty(M, K, dtype=E4M3, device=device), torch.empty(M, 1, dtype=torch.float32, device=device)


def quantize_rows(x: torch.Tensor) -> FP8Act:
    flat = _rows(x)
    M, K = flat.shape
    q, s = _outputs(M, K, x.device)
    if M:
        _quant_rows[(M,)](flat, q, s, K, flat.stride(0), **_launch_cfg(K))
    return FP8Act(q, s, tuple(x.shape))


def rms_norm_quant(x: torch.Tensor, weight: torch.Tensor, eps: float) -> FP8Act:
    flat = _rows(x)
    M, K = flat.shape
    q, s = _outputs(M, K, x.device)
    if M:
        _rms_norm_quant[(M,)](flat, weight, q, s, K, flat.stride(0), eps, **_launch_cfg(K))
    return FP8Act(q, s, tuple(x.shape))


def add_rms_norm_quant(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, eps: float):
    fx, fy = _rows(x), _rows(y)
    M, K = fx.shape
    out = torch.empty(M, K, dtype=x.dtype, device=x.device)
    q, s = _outputs(M, K, x.device)
    if M:
        _add_rms_norm_quant[(M,)](fx, fy, out, weight, q, s, K, fx.stride(0), fy.stride(0), eps, **_launch_cfg(K))
    return out.view(x.shape), FP8Act(q, s, tuple(x.shape))


def add_layer_norm_quant(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float):
    fx, fy = _rows(x), _rows(y)
    M, K = fx.shape
    out = torch.empty(M, K, dtype=x.dtype, device=x.device)
    q, s = _outputs(M, K, x.device)
    if M:
        _add_layer_norm_quant[(M,)](fx, fy, out, weight, bias, q, s, K, fx.stride(0), fy.stride(0), eps,
                                    **_launch_cfg(K))
    return out.view(x.shape), FP8Act(q, s, tuple(x.shape))


def gelu_quant(h: torch.Tensor) -> FP8Act:
    flat = _rows(h)
    M, K = flat.shape
    q, s = _outputs(M, K, h.device)
    if M:
        _gelu_quant[(M,)](flat, q, s, K, flat.stride(0), **_launch_cfg(K))
    return FP8Act(q, s, tuple(h.shape))


def swiglu_quant(gate: torch.Tensor, up: torch.Tensor) -> FP8Act:
    fg, fu = _rows(gate), _rows(up)
    M, K = fg.shape
    q, s = _outputs(M, K, gate.device)
    if M:
        _swiglu_quant[(M,)](fg, fu, q, s, K, fg.stride(0), fu.stride(0), **_launch_cfg(K))
    return FP8Act(q, s, tuple(gate.shape))


assert E4M3_MAX == 448.0 and MIN_SCALE == 1e-12   # the kernels spell these out
