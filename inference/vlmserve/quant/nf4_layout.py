"""The NF4 weight layout the GPU kernels read (vlmserve.quant.gluon_nf4), and the way back to bitsandbytes'.

bitsandbytes stores a [N, K] NF4 weight row-major, two 4-bit indices per byte (the even column in the high nibble),
one absmax per 64 consecutive values ([N, K/64] in row order). The tensor-core kernel wants each thread's one
16-byte load to be exactly the weights its mma.m16n8k16 operand-A registers hold, so the bytes are permuted once,
when a layer first runs on the GPU (vlmserve.quant.linear), and the bitsandbytes layout is kept nowhere (there is
no room for two copies under the 8 GiB batch-1 budget). Torch only, so the CPU tests check it.

Group-major: 512 contiguous bytes per 16-row group g = n // 16 and quant block b (64 columns), one warp's 32 16-byte
loads; a group's K/64 blocks follow each other, so the bytes of rows r0..r1 (multiples of 16) are contiguous and one
layout serves every tile width:
    offset = (g * K/64 + b) * 512 + lane * 16 + word * 4 + byte
    row    = g*16 + (byte >> 1)*8 + lane // 4
    column = b*64 + (word >> 1)*32 + (word & 1)*16 + 2*(lane % 4) + (byte & 1); high nibble that column,
             low nibble column + 8
The scales are transposed to [K/64, N], so that a block's scales of consecutive rows are contiguous: the float32
absmax, or the uint8 codes of a double-quantized one (its nested absmax keeps its own order, indexed by the flat
block n * K/64 + b).
"""
from __future__ import annotations

import numpy as np
import torch

QBLOCK = 64
GROUP_ROWS = 16
# The nibble tensor of one chunk of rows, viewed so that a permute gives the layout: rows as (group, byte bit 1,
# lane // 4), columns as (block, word bit 1, word bit 0, nibble, lane % 4, byte bit 0).
_TO_KERNEL = (0, 3, 2, 7, 4, 5, 1, 8, 6)   # -> group, block | lane // 4, lane % 4 | word | byte bits | nibble
_TO_BNB = tuple(_TO_KERNEL.index(d) for d in range(9))
_CHUNK_BYTES = 32 << 20     # nibbles per step, so that repacking the output layer needs no GiB of temporaries


def fits(n: int, k: int) -> bool:
    """Whether a [n, k] weight can take the layout (whole 16-row groups; the kernels tile N by 64 or 128)."""
    return n % 64 == 0 and k % QBLOCK == 0


def _rows_per_step(n: int, k: int) -> int:
    return max(GROUP_ROWS, min(n, _CHUNK_BYTES // k // GROUP_ROWS * GROUP_ROWS))


def _permute_rows(packed: torch.Tensor, n: int, k: int, view: tuple, order: tuple) -> torch.Tensor:
    """packed's nibbles, a chunk of rows at a time, viewed as `view` (with the chunk's row count) and permuted by
    `order`, packed again two to a byte."""
    packed = packed.reshape(-1)
    out = torch.empty_like(packed)
    step = _rows_per_step(n, k)
    for r0 in range(0, n, step):
        part = packed[r0 * k // 2:min(n, r0 + step) * k // 2]
        rows = part.numel() * 2 // k
        t = torch.stack((part >> 4, part & 15), -1).view(view(rows)).permute(order).reshape(-1, 2)
        out[r0 * k // 2:r0 * k // 2 + part.numel()] = t[:, 0] << 4 | t[:, 1]
    return out


def to_kernel_layout(packed: torch.Tensor, scales: torch.Tensor, n: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """bitsandbytes' packed uint8 [N*K/2] and absmax [N*K/64] (float32, or the uint8 codes of a double-quantized one)
    -> (the repacked bytes, the scales transposed to [K/64, N], same dtype), on their device, chunk by chunk."""
    if not fits(n, k):
        raise ValueError(f"the kernel layout needs N % 64 == 0 and K % 64 == 0, got [{n}, {k}]")
    out = _permute_rows(packed, n, k, lambda rows: (rows // 16, 2, 8, k // QBLOCK, 2, 2, 2, 4, 2), _TO_KERNEL)
    return out, scales.reshape(n, k // QBLOCK).t().contiguous()


def to_bnb_layout(repacked: torch.Tensor, scales_t: torch.Tensor, n: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The inverse of to_kernel_layout: (packed uint8 [N*K/2], absmax or its codes [N*K/64]) in bitsandbytes' order."""
    out = _permute_rows(repacked, n, k, lambda rows: (rows // 16, k // QBLOCK, 8, 4, 2, 2, 2, 2, 2), _TO_BNB)
    return out, scales_t.t().reshape(-1).contiguous()


def index(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The layout in plain index math (numpy; tests): for each byte of the repacked buffer, the (row, column) of the
    weight whose index is its high nibble; its low nibble is (row, column + 8)."""
    off = np.arange(n * k // 2, dtype=np.int64)
    byte, word, lane = off & 3, (off >> 2) & 3, (off >> 4) & 31
    group, blk = np.divmod(off >> 9, k // QBLOCK)
    row = group * 16 + (byte >> 1) * 8 + (lane >> 2)
    col = blk * QBLOCK + (word >> 1) * 32 + (word & 1) * 16 + 2 * (lane & 3) + (byte & 1)
    return row, col
