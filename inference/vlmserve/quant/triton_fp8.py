"""FP8 (e4m3) matmul at decode sizes: a split-K Triton kernel, chosen per shape against cuBLAS by timing.

cuBLASLt's row-scaled FP8 GEMMs cut the output into 128 x 128 tiles. At a decode step's 64 rows the decoder's qkv
(N 4,608) and 4h_to_h (N 4,096, K 13,696) get 32-36 tiles for 132 SMs and read their e4m3 weights at 1.2-1.6 TB/s on
an H200: no faster than bf16, which reads twice the bytes (bench/results/fp8_check.json). This kernel splits K until
every SM streams weight tiles. Each program multiplies e4m3 by e4m3 on the tensor cores, adds each K block's product
to a float32 accumulator, scales its tile by the weight rows' and activation rows' scales and stores it, or its
float32 partial, which one reduce kernel sums together with the bias (triton_tiles).

Whether cuBLAS or one of the kernel's configurations serves (rows, N, K) is timed once per shape, on its first call
outside a CUDA graph capture (the engine's decode warm-up makes that call before it captures). A configuration whose
output strays from cuBLAS's is not used. Only a serving engine times (`fp8.prepare_fp8` switches it on): a one-off
`generate` would spend more compiling the candidates than it gains, and keeps cuBLAS.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from vlmserve.gpu_timing import KERNEL_TIMING, capturing, graph_time_us
from vlmserve.kernel_choice import Rejected, env_choice, fastest, relative_max_error
from vlmserve.quant.fp8 import FEW_ROWS as MAX_ROWS
from vlmserve.quant.triton_tiles import _split_k, _store_tile, add_splits, num_sms, split_target


@triton.jit
def _fp8_splitk_kernel(x_ptr, xs_ptr, w_ptr, ws_ptr, bias_ptr, out_ptr, M, N, K, stride_xm, SPLIT_K,
                       BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                       IS_SPLIT: tl.constexpr, HAS_BIAS: tl.constexpr, FP8_DOT: tl.constexpr):
    # out^T tile [BLOCK_N, BLOCK_M] = W tile @ x^T: the weight is the first operand, the rows of x (at most 128)
    # the second, so one program covers every row and a weight byte is read once.
    pid_n = tl.program_id(0)
    pid_k = tl.program_id(1)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rm = tl.arange(0, BLOCK_M)
    rk = tl.arange(0, BLOCK_K)
    n_mask = rn < N
    m_mask = rm < M
    steps = tl.cdiv(K, BLOCK_K)
    per_split = tl.cdiv(steps, SPLIT_K)
    s_begin = pid_k * per_split
    s_end = tl.minimum(s_begin + per_split, steps)
    w_ptrs = w_ptr + rn[:, None] * K + rk[None, :]
    x_ptrs = x_ptr + rm[:, None] * stride_xm + rk[None, :]
    acc = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
    for s in range(s_begin, s_end):
        k_mask = s * BLOCK_K + rk < K
        w = tl.load(w_ptrs + s * BLOCK_K, mask=n_mask[:, None] & k_mask[None, :], other=0.0)
        x = tl.load(x_ptrs + s * BLOCK_K, mask=m_mask[:, None] & k_mask[None, :], other=0.0)
        if FP8_DOT:
            # a fresh product per K block, added in float32: Hopper's FP8 MMA keeps fewer accumulator bits than
            # float32 across a long chain, and cuBLAS (without fast accumulation) promotes as often
            acc += tl.dot(w, tl.trans(x))
        else:   # the CPU interpreter: the same products in float32 (e4m3 values are exact there)
            acc += tl.dot(w.to(tl.float32), tl.trans(x.to(tl.float32)), input_precision="ieee")
    acc = acc * tl.load(ws_ptr + rn, mask=n_mask, other=0.0)[:, None]
    acc = acc * tl.load(xs_ptr + rm, mask=m_mask, other=0.0)[None, :]
    _store_tile(acc, rm, rn, m_mask, n_mask, M, N, pid_k, bias_ptr, out_ptr, True, HAS_BIAS, IS_SPLIT)


@dataclass(frozen=True)
class Config:
    block_n: int
    block_k: int
    num_warps: int = 4
    num_stages: int = 4
    waves: int = 2          # programs per SM that K is split for


CUBLAS = None               # the choice "torch._scaled_mm"
# Checked offline for sm_90a (ptxas): at 128 rows a 128-wide tile needs 8 warps (4 spill at 255 registers) and a
# 256-deep K block takes 242 registers with 4.
CONFIGS = (Config(64, 128), Config(64, 128, waves=4), Config(128, 128, num_warps=8), Config(64, 256, num_stages=3))


def row_block(m: int) -> int:
    return max(16, 1 << (m - 1).bit_length())


def launch(x_data: torch.Tensor, x_scale: torch.Tensor, w: torch.Tensor, w_scale: torch.Tensor,
           bias: torch.Tensor | None, out: torch.Tensor, cfg: Config) -> torch.Tensor:
    """out [M, N] = (x_data * x_scale) @ (w * w_scale)^T + bias, by the kernel with `cfg`."""
    m, k = x_data.shape
    n = w.shape[0]
    if m > MAX_ROWS or x_data.stride(1) != 1 or not w.is_contiguous():
        raise ValueError(f"the split-K FP8 kernel takes up to {MAX_ROWS} unit-stride rows and a contiguous weight")
    tiles = triton.cdiv(n, cfg.block_n)
    split = _split_k(tiles, triton.cdiv(k, cfg.block_k), num_sms(x_data.device), 4, cfg.waves)
    target = split_target(out, split)
    _fp8_splitk_kernel[(tiles, split)](
        x_data, x_scale, w, w_scale, bias if bias is not None else w_scale, target, m, n, k, x_data.stride(0), split,
        BLOCK_M=row_block(m), BLOCK_N=cfg.block_n, BLOCK_K=cfg.block_k, IS_SPLIT=split > 1,
        HAS_BIAS=bias is not None, FP8_DOT=x_data.is_cuda, num_warps=cfg.num_warps, num_stages=cfg.num_stages)
    add_splits(target, bias, out)
    return out


SPLITK_CHOICES = ("tune", "off")   # VLMSERVE_FP8_SPLITK: time the kernel against cuBLAS, or cuBLAS only
TUNING = [False]            # set by fp8.prepare_fp8 (the engine); VLMSERVE_FP8_SPLITK=off overrides it
_chosen: dict[tuple, Config | None] = {}
_timings: dict[tuple, list] = {}


def choice_key(m: int, n: int, k: int, has_bias: bool, dtype: torch.dtype) -> tuple:
    return (row_block(m), n, k, has_bias, dtype)


def agrees(out: torch.Tensor, ref: torch.Tensor) -> bool:
    """Both multiply the same e4m3 values exactly and accumulate in float32; only the order of additions and the
    point where the scales are applied differ."""
    return relative_max_error(out, ref) <= 1e-2


def choose(x_data, x_scale, w, w_scale, bias, out_dtype, cublas) -> Config | None:
    """The configuration for this shape (None: cuBLAS), timed on first use. `cublas()` computes the product with
    torch._scaled_mm."""
    key = choice_key(x_data.shape[0], w.shape[0], w.shape[1], bias is not None, out_dtype)
    if key in _chosen:
        return _chosen[key]
    if not TUNING[0] or capturing() or env_choice("VLMSERVE_FP8_SPLITK", SPLITK_CHOICES) == "off":
        return CUBLAS
    out = torch.empty((x_data.shape[0], w.shape[0]), device=x_data.device, dtype=out_dtype)
    ref = cublas()
    cublas_us = graph_time_us(cublas, **KERNEL_TIMING, device=x_data.device)

    def measure(cfg: Config) -> float:
        launch(x_data, x_scale, w, w_scale, bias, out, cfg)
        if not agrees(out, ref):
            raise Rejected("output differs from cuBLAS: not used")
        return graph_time_us(lambda: launch(x_data, x_scale, w, w_scale, bias, out, cfg), **KERNEL_TIMING,
                             device=x_data.device)

    best, timings = fastest(CONFIGS, measure, CUBLAS, cublas_us)
    timings.insert(0, ("cublas", cublas_us, None))
    _chosen[key] = best
    _timings[key] = timings
    return best


def chosen() -> dict[tuple, Config | None]:
    """Per shape key, the choice made (None: cuBLAS)."""
    return dict(_chosen)


def choice_timings() -> dict[tuple, list]:
    """Per shape key: (config or "cublas", microseconds or None, error or None) for every candidate timed."""
    return dict(_timings)
