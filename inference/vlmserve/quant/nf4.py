"""NF4 4-bit weights in bitsandbytes' format.

Layout (identical to bitsandbytes `quantize_4bit(quant_type="nf4")`):
- the weight is flattened row-major and cut into blocks of `blocksize` (64) values; the last block is
  zero-padded;
- each block stores its absolute maximum in float32 (`absmax`);
- each value becomes the index of the nearest entry of the 16-value NF4 code book after dividing by its
  block's absmax; two indices per byte, the FIRST value in the HIGH nibble; ceil(numel / 2) bytes.
- optional double quantization of `absmax` (bitsandbytes' `compress_statistics`): subtract the mean
  (`offset`), then 8-bit blockwise quantization with blocksize 256 and the signed dynamic code book;
  the 256-blocks' own absmax (`nested_absmax`) stays float32.

Dequantized value = code[index] * absmax[block], computed in float32, then cast.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

BLOCKSIZE = 64
NESTED_BLOCKSIZE = 256

# bitsandbytes' NF4 table (get_4bit_type("nf4")): quantiles of N(0, 1) scaled to [-1, 1], with an exact 0.
NF4_CODE_VALUES = (
    -1.0,
    -0.6961928009986877,
    -0.5250730514526367,
    -0.39491748809814453,
    -0.28444138169288635,
    -0.18477343022823334,
    -0.09105003625154495,
    0.0,
    0.07958029955625534,
    0.16093020141124725,
    0.24611230194568634,
    0.33791524171829224,
    0.44070982933044434,
    0.5626170039176941,
    0.7229568362236023,
    1.0,
)
NF4_ZERO_INDEX = 7

# Elements handled per step while quantizing: bounds the float32/int64 temporaries (a 151552x4096 output
# layer would otherwise need several GiB of scratch).
_CHUNK = 1 << 23


def nf4_code(device: torch.device | str | None = None) -> Tensor:
    return torch.tensor(NF4_CODE_VALUES, dtype=torch.float32, device=device)


def dynamic_code_8bit(device: torch.device | str | None = None) -> Tensor:
    """bitsandbytes' signed 8-bit dynamic code book (create_dynamic_map(signed=True, 7, 8)), sorted.

    For exponent e = 0..6 the magnitudes 10**(e-6) * (midpoints of linspace(0.1, 1, 2**e + 1)), both signs,
    plus 0 and 1.0: 2 * 127 + 2 = 256 values. Computed in float32 exactly as bitsandbytes does.
    """
    values: list[float] = []
    for e in range(7):
        edges = torch.linspace(0.1, 1.0, 2**e + 1, dtype=torch.float32)
        mids = (edges[:-1] + edges[1:]) / 2.0
        scaled = (10 ** (e - 6)) * mids
        values += scaled.tolist()
        values += (-scaled).tolist()
    values += [0.0, 1.0]
    values.sort()
    return torch.tensor(values, dtype=torch.float32, device=device)


def nearest_index(x: Tensor, code: Tensor) -> Tensor:
    """Index of the nearest entry of the ascending `code` for each float32 value (ties: lower index,
    i.e. the same answer as argmin(|x - code|) without its numel x len(code) temporary)."""
    hi = torch.searchsorted(code, x).clamp_(1, code.numel() - 1)
    lo = hi - 1
    take_lo = (x - code[lo]).abs() <= (code[hi] - x).abs()
    return torch.where(take_lo, lo, hi)


def _blockwise_absmax(flat: Tensor, blocksize: int) -> Tensor:
    n = flat.numel()
    pad = (-n) % blocksize
    blocks = torch.nn.functional.pad(flat, (0, pad)) if pad else flat
    return blocks.view(-1, blocksize).abs().amax(dim=1)


def _normalize(flat: Tensor, absmax: Tensor, blocksize: int) -> Tensor:
    """flat (float32, length a multiple of blocksize) / its block absmax; all-zero blocks stay zero."""
    safe = torch.where(absmax == 0, torch.ones_like(absmax), absmax)
    return (flat.view(-1, blocksize) / safe[:, None]).view(-1)


@dataclass
class NestedAbsmax:
    """Double-quantized absmax: absmax[i] = code[q[i]] * nested_absmax[i // blocksize] + offset."""

    q: Tensor  # uint8 [n_blocks]
    nested_absmax: Tensor  # float32 [ceil(n_blocks / blocksize)]
    code: Tensor  # float32 [256]
    offset: float
    blocksize: int = NESTED_BLOCKSIZE

    def dequantize(self) -> Tensor:
        n = self.q.numel()
        vals = self.code[self.q.long()]
        pad = (-n) % self.blocksize
        if pad:
            vals = torch.nn.functional.pad(vals, (0, pad))
        vals = (vals.view(-1, self.blocksize) * self.nested_absmax[:, None]).view(-1)[:n]
        return vals + self.offset


@dataclass
class NF4Weight:
    """A weight in bitsandbytes' NF4 layout. `absmax` is float32, or None when `nested` holds it."""

    packed: Tensor  # uint8 [ceil(numel / 2)]
    absmax: Tensor | None  # float32 [ceil(numel / blocksize)]
    shape: tuple[int, ...]
    code: Tensor  # float32 [16]
    blocksize: int = BLOCKSIZE
    nested: NestedAbsmax | None = None

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def absmax_f32(self) -> Tensor:
        return self.nested.dequantize() if self.nested is not None else self.absmax

    def dequantize(self, dtype: torch.dtype = torch.float32) -> Tensor:
        return dequantize_nf4(self.packed, self.absmax_f32(), self.shape, dtype, self.blocksize, self.code)

    def dequantize_rows(self, r0: int, r1: int, out: Tensor) -> None:
        """Rows r0..r1 of a 2-D weight into out [r1 - r0, K] (its dtype), without touching other rows.
        Needs K % blocksize == 0, so that every row starts a block and a byte."""
        n, k = self.shape
        if k % self.blocksize or not 0 <= r0 < r1 <= n:
            raise ValueError(f"rows {r0}..{r1} of [{n}, {k}] (blocksize {self.blocksize}) cannot be cut out")
        b0, b1 = r0 * k // self.blocksize, r1 * k // self.blocksize
        if self.nested is None:
            absmax = self.absmax[b0:b1]
        else:
            nq = self.nested  # nested blocks are not aligned with rows: dequantize just this range
            idx = torch.arange(b0, b1, device=nq.q.device)
            absmax = nq.code[nq.q[b0:b1].long()] * nq.nested_absmax[idx // nq.blocksize] + nq.offset
        vals = self.code[unpack_indices(self.packed[r0 * k // 2: r1 * k // 2], (r1 - r0) * k).long()]
        out.copy_((vals.view(-1, self.blocksize) * absmax.float()[:, None]).view(r1 - r0, k))

    def nbytes(self) -> int:
        total = self.packed.numel() + self.code.numel() * 4
        if self.nested is not None:
            nq = self.nested
            total += nq.q.numel() + nq.nested_absmax.numel() * 4 + nq.code.numel() * 4
        else:
            total += self.absmax.numel() * 4
        return total


def quantize_nf4(weight: Tensor, blocksize: int = BLOCKSIZE, double_quant: bool = False) -> NF4Weight:
    """Quantize any float tensor to NF4 (on its own device; float32 math)."""
    if not weight.is_floating_point():
        raise TypeError(f"NF4 quantization needs a floating-point tensor, got {weight.dtype}")
    if blocksize <= 0 or blocksize % 2:
        raise ValueError(f"blocksize must be a positive even number, got {blocksize}")
    if weight.numel() == 0:
        raise ValueError("cannot quantize an empty tensor")
    flat = weight.detach().reshape(-1)
    n = flat.numel()
    code = nf4_code(flat.device)
    n_blocks = -(-n // blocksize)
    packed = torch.empty(-(-n // 2), dtype=torch.uint8, device=flat.device)
    absmax = torch.empty(n_blocks, dtype=torch.float32, device=flat.device)
    chunk = max(blocksize, (_CHUNK // blocksize) * blocksize)  # whole blocks, so an even count
    for start in range(0, n, chunk):
        part = flat[start : start + chunk].float()
        pad = (-part.numel()) % blocksize
        if pad:
            part = torch.nn.functional.pad(part, (0, pad))
        part_absmax = part.view(-1, blocksize).abs().amax(dim=1)
        idx = nearest_index(_normalize(part, part_absmax, blocksize), code).to(torch.uint8)
        pairs = (idx[0::2] << 4) | idx[1::2]
        b0 = start // 2
        packed[b0 : b0 + pairs.numel()] = pairs[: packed.numel() - b0]
        absmax[start // blocksize : start // blocksize + part_absmax.numel()] = part_absmax
    w = NF4Weight(packed=packed, absmax=absmax, shape=tuple(weight.shape), code=code, blocksize=blocksize)
    if double_quant:
        w.nested = double_quantize_absmax(absmax)
        w.absmax = None
    return w


def unpack_indices(packed: Tensor, numel: int) -> Tensor:
    """The 4-bit indices in element order (high nibble first), as uint8 [numel]."""
    pairs = torch.stack((packed >> 4, packed & 0x0F), dim=-1)
    return pairs.reshape(-1)[:numel]


def dequantize_nf4(
    packed: Tensor,
    absmax: Tensor,
    shape: tuple[int, ...],
    dtype: torch.dtype = torch.float32,
    blocksize: int = BLOCKSIZE,
    code: Tensor | None = None,
) -> Tensor:
    n = 1
    for s in shape:
        n *= s
    if packed.numel() != -(-n // 2):
        raise ValueError(f"packed has {packed.numel()} bytes, shape {tuple(shape)} needs {-(-n // 2)}")
    if absmax.numel() != -(-n // blocksize):
        raise ValueError(f"absmax has {absmax.numel()} values, shape {tuple(shape)} needs {-(-n // blocksize)}")
    code = nf4_code(packed.device) if code is None else code.to(device=packed.device, dtype=torch.float32)
    vals = code[unpack_indices(packed.reshape(-1), n).long()]
    pad = (-n) % blocksize
    if pad:
        vals = torch.nn.functional.pad(vals, (0, pad))
    vals = vals.view(-1, blocksize) * absmax.float().view(-1, 1)
    return vals.view(-1)[:n].view(shape).to(dtype)


def quantize_blockwise_8bit(x: Tensor, code: Tensor, blocksize: int = NESTED_BLOCKSIZE) -> tuple[Tensor, Tensor]:
    """bitsandbytes' quantize_blockwise: per-block absmax, value / absmax -> nearest entry of `code`."""
    flat = x.reshape(-1).float()
    n = flat.numel()
    absmax = _blockwise_absmax(flat, blocksize)
    pad = (-n) % blocksize
    padded = torch.nn.functional.pad(flat, (0, pad)) if pad else flat
    normalized = _normalize(padded, absmax, blocksize).clamp_(-1.0, 1.0)
    q = nearest_index(normalized, code).to(torch.uint8)[:n]
    return q, absmax


def double_quantize_absmax(absmax: Tensor) -> NestedAbsmax:
    offset = absmax.float().mean()
    code = dynamic_code_8bit(absmax.device)
    q, nested = quantize_blockwise_8bit(absmax.float() - offset, code, NESTED_BLOCKSIZE)
    return NestedAbsmax(q=q, nested_absmax=nested, code=code, offset=float(offset.item()))
