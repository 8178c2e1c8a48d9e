"""Large-M NF4 matmul: dequantize the weight a few thousand rows at a time into one shared scratch
buffer, and let cuBLAS (torch.mm / addmm) multiply each chunk into its slice of the output.

Why: a Triton kernel that dequantizes inside the GEMM reaches ~130 TFLOP/s on an H100, cuBLAS ~700; the
dequantization itself is memory-bound and cheap (0.5 byte read + 2 bytes written per weight, into L2-sized
chunks). A 16-bit copy of a whole weight never exists: only one chunk, in a buffer that every layer
shares (SCRATCH_BYTES per device, allocated once, never resized, so CUDA graphs may capture it).

The buffer is shared by all layers of a device, so calls on that device must be ordered (one stream at a
time, as the engine and generate run the model). Torch-only: the row dequantizer is passed in (Triton on
GPU, torch in tests).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ..kernel_choice import env_int

# The largest chunk. It is held for good, so it counts against the 8 GiB batch-1 budget. 256 MiB holds every
# decoder and vision layer in one chunk (dense_h_to_4h is 214 MiB in bf16): a lone request's first token then pays
# one dequantization and one GEMM per layer instead of ~100 launches per decoder layer at 8 MiB. Measured on an
# H100 (bench/nf4_kernel_sweep.py --ttft 8,256): TTFT 224 ms against 372 at 8 MiB (bf16 190), batch-1 peak 7.51
# GiB. VLMSERVE_NF4_SCRATCH_MIB (read when the buffer is first made) trades it back where memory is tighter.
SCRATCH_BYTES = 256 << 20


def scratch_bytes() -> int:
    """The scratch size: VLMSERVE_NF4_SCRATCH_MIB if set (1..4096), else SCRATCH_BYTES."""
    return env_int("VLMSERVE_NF4_SCRATCH_MIB", SCRATCH_BYTES >> 20, 1, 4096) << 20
ROW_ALIGN = 64  # chunk boundaries on multiples of 64 rows keep output slices 16-byte aligned for cuBLAS

_scratch: dict[tuple[str, int | None], Tensor] = {}

DequantRows = Callable[[int, int, Tensor], None]  # (row0, row1, dst [row1-row0, K]) -> fills dst


def scratch(device: torch.device) -> Tensor:
    """The device's shared dequantization buffer (uint8, scratch_bytes(); its size is fixed once made: CUDA
    graphs may hold its address)."""
    key = (device.type, device.index if device.type != "cuda" or device.index is not None
           else torch.cuda.current_device())
    buf = _scratch.get(key)
    if buf is None:
        buf = _scratch[key] = torch.empty(scratch_bytes(), dtype=torch.uint8, device=device)
    return buf


def rows_per_chunk(n: int, k: int, itemsize: int, chunk_bytes: int, scratch_limit: int | None = None) -> int:
    """Rows of a [n, k] weight that fit in chunk_bytes (<= scratch_limit, the scratch's size), aligned unless it is
    all of n."""
    chunk_bytes = min(chunk_bytes, scratch_limit if scratch_limit is not None else scratch_bytes())
    rows = chunk_bytes // (k * itemsize)
    if rows >= n:
        return n
    if rows >= ROW_ALIGN:
        rows -= rows % ROW_ALIGN
    elif rows >= 16:
        rows -= rows % 16     # whole 16-row groups: the kernel layout's dequantizer cuts nothing finer
    if rows < 1:
        raise ValueError(f"one row of K={k} ({k * itemsize} bytes) does not fit the {chunk_bytes}-byte scratch")
    return rows


def chunked_linear(x: Tensor, n: int, bias: Tensor | None, dequant_rows: DequantRows, chunk_bytes: int,
                   out: Tensor) -> Tensor:
    """out[M, n] = x[M, K] @ W^T + bias, W dequantized chunk by chunk by `dequant_rows`."""
    m, k = x.shape
    if out.shape != (m, n) or out.stride(1) != 1:
        raise ValueError(f"out must be a row-major [{m}, {n}] tensor, got {tuple(out.shape)} {out.stride()}")
    whole = scratch(x.device)
    rows = rows_per_chunk(n, k, x.element_size(), chunk_bytes, whole.numel())
    buf = whole[: rows * k * x.element_size()].view(x.dtype).view(rows, k)
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        w = buf[: r1 - r0]
        dequant_rows(r0, r1, w)
        dst = out[:, r0:r1]  # a column slice: cuBLAS writes it in place (row stride n >= its width)
        if bias is None:
            torch.mm(x, w.t(), out=dst)
        else:
            torch.addmm(bias[r0:r1], x, w.t(), out=dst)
    return out
