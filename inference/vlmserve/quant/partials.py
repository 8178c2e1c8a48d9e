"""A linear layer's output left as its split-K partial sums, for the consumer to add up as it reads them.

The NF4 kernels split K at decode sizes (their tiles alone do not fill the GPU) and a reduce kernel sums the
float32 partials [S, M, N] into the output: one more launch per linear, 0.5 ms of a 6.2 ms decode step at 16 rows on
an H200 (160 launches). The decoder's residual-add + RMSNorm and its SwiGLU read their input once anyway, so they sum
the partials themselves (`vlmserve.fused`), in the reduce kernel's order and with its rounding: the same values,
one launch fewer per layer for each. `leave_splits` asks a layer for them; everything else gets tensors.
"""
from __future__ import annotations

import torch
from torch import nn


class Partials:
    """Value = (parts[0] + parts[1] + ... + parts[S-1]) in float32, in that order, rounded to `dtype`: exactly what the
    split-K reduce kernel writes. parts: float32 [S, M, N] with unit stride in N (a column slice of a wider one is
    fine); shape: the logical output shape (lead dims, N). No bias: a layer with one sums its own partials."""

    __slots__ = ("parts", "dtype", "shape")

    def __init__(self, parts: torch.Tensor, dtype: torch.dtype, shape: tuple[int, ...]):
        if parts.dim() != 3 or parts.dtype != torch.float32 or parts.stride(-1) != 1:
            raise ValueError(f"partials must be float32 [S, M, N] with unit column stride, got {parts.dtype} "
                             f"{tuple(parts.shape)} strides {parts.stride()}")
        self.parts, self.dtype, self.shape = parts, dtype, tuple(shape)

    def chunk(self, chunks: int, dim: int = -1) -> tuple["Partials", ...]:
        """Column slices, as Tensor.chunk over the last dimension (SwiGLU's gate and up halves)."""
        n = self.shape[-1]
        if dim not in (-1, len(self.shape) - 1) or n % chunks:
            raise ValueError(f"partials split only into equal column slices, got {chunks} of {n} along {dim}")
        w = n // chunks
        return tuple(Partials(self.parts[..., i * w:(i + 1) * w], self.dtype, (*self.shape[:-1], w))
                     for i in range(chunks))

    def view(self, *shape: int) -> "Partials":
        """The same partials under another logical shape with the same last dimension (as Tensor.view)."""
        if shape[-1] != self.shape[-1]:
            raise ValueError(f"partials keep their columns: {self.shape} cannot be viewed as {shape}")
        return Partials(self.parts, self.dtype, shape)

    def total(self) -> torch.Tensor:
        """The summed output (for a consumer that does not read partials)."""
        if self.parts.is_cuda:
            from .triton_tiles import add_splits
            out = torch.empty(self.parts.shape[1:], device=self.parts.device, dtype=self.dtype)
            add_splits(self.parts.contiguous(), None, out)
            return out.view(self.shape)
        acc = self.parts[0].clone()
        for s in range(1, self.parts.shape[0]):
            acc += self.parts[s]
        return acc.to(self.dtype).view(self.shape)


def as_tensor(y):
    """y, summed if it is a Partials."""
    return y.total() if isinstance(y, Partials) else y


def leave_splits(layer: nn.Module, x: torch.Tensor):
    """layer(x), except that an NF4 layer whose kernel splits K returns its Partials unsummed: for consumers that
    take them (fused.add_rms_norm's y, fused.swiglu). Any other layer, or call, gives its tensor."""
    from .linear import NF4Linear

    return layer(x, leave_splits=True) if isinstance(layer, NF4Linear) else layer(x)
