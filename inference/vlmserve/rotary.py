"""GLM-4 rotary embedding (the official config's "original_rope" variant).

Only the first half of each head's dims rotate, in adjacent (interleaved) pairs (0,1), (2,3)...
The cos/sin table is precomputed in float32 and indexed with the position ids, so the forward
pass has no data-dependent shapes (CUDA-graph friendly).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class RotaryTable(nn.Module):
    def __init__(self, head_dim: int, max_positions: int, base: float = 10000.0):
        super().__init__()
        self.head_dim = head_dim
        self.rot_pairs = head_dim // 4          # rotated dims = head_dim / 2, in pairs
        self.max_positions = max_positions
        self.base = base
        # Not persistent: it is derived, and the official checkpoint's inv_freq buffer is unused.
        self.register_buffer("cos_sin", torch.empty(max_positions, self.rot_pairs, 2), persistent=False)

    @torch.no_grad()
    def build(self, device=None) -> None:
        """(Re)compute the table; needed after construction on the meta device."""
        device = device or self.cos_sin.device
        if torch.device(device).type == "meta":
            device = "cpu"
        rot_dim = 2 * self.rot_pairs
        inv_freq = 1.0 / (self.base ** (torch.arange(0, rot_dim, 2, dtype=torch.float32, device=device) / rot_dim))
        angles = torch.outer(torch.arange(self.max_positions, dtype=torch.float32, device=device), inv_freq)
        self.cos_sin = torch.stack((angles.cos(), angles.sin()), dim=-1)

    def forward(self, positions: torch.Tensor, dtype: torch.dtype) -> "RotaryFactors":
        """positions [B, T] -> the per-position factors every layer applies, built once per forward pass
        from the table rounded to ``dtype`` (the official code rounds the table to the model dtype and
        rotates in it)."""
        cs = self.cos_sin[positions].to(dtype)                         # [B, T, P, 2]
        cos, sin = cs[..., 0], cs[..., 1]
        b, t, p = cos.shape
        rest = self.head_dim - 2 * p
        # per dim d: out[d] = x[d] * c[d] + x[d ^ 1] * s[d]; pairs (a, b) -> (a cos - b sin, b cos + a sin);
        # the unrotated dims get c = 1, s = 0
        c = torch.cat((torch.stack((cos, cos), -1).flatten(-2), cos.new_ones(b, t, rest)), -1)
        s = torch.cat((torch.stack((-sin, sin), -1).flatten(-2), sin.new_zeros(b, t, rest)), -1)
        return RotaryFactors(c[:, :, None], s[:, :, None])


class RotaryFactors(NamedTuple):
    """c, s [B, T, 1, D]: broadcast over the heads of a [B, T, heads, D] tensor."""
    c: torch.Tensor
    s: torch.Tensor


def apply_rotary(x: torch.Tensor, f: RotaryFactors) -> torch.Tensor:
    """x [B, T, heads, D] -> x * c + pair_swap(x) * s: four kernels for all heads of a layer (q and k
    together), where the pairwise formula took ~8 per tensor. Every product and the sum are rounded in x's
    dtype exactly as in (a cos - b sin, b cos + a sin), so the result is the same bit for bit (up to the
    sign of zeros in the unrotated dims)."""
    swapped = x.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)
    return x * f.c + swapped * f.s


def rotate_in_place(x: torch.Tensor, f: RotaryFactors) -> torch.Tensor:
    """apply_rotary's result, written over x where a Triton kernel can (CUDA, or Triton's interpreter): one pass over
    a prefill's q and k instead of apply_rotary's four (a flip, two products, a sum over 8 x 1,611 tokens x 34 heads
    per layer); elsewhere apply_rotary's new tensor. The same values bit for bit (tests/test_rotary_kernel.py)."""
    from vlmserve.kernel_choice import runs_triton
    if runs_triton(x.device):
        from vlmserve import triton_fused
        if triton_fused.rotate_(x, f.c, f.s):
            return x
    return apply_rotary(x, f)
