"""GLM-4 rotary embedding (the official config's "original_rope" variant).

Only the first half of each head's dims rotate, in adjacent (interleaved) pairs (0,1), (2,3)...
The cos/sin table is precomputed in float32 and indexed with the position ids, so the forward
pass has no data-dependent shapes (CUDA-graph friendly).
"""
from __future__ import annotations

import torch
from torch import nn


class RotaryTable(nn.Module):
    def __init__(self, head_dim: int, max_positions: int, base: float = 10000.0):
        super().__init__()
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

    def forward(self, positions: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """positions [B, T] -> cos/sin [B, T, pairs, 2] in ``dtype`` (the official code rounds the
        table to the model dtype and rotates in it)."""
        return self.cos_sin[positions].to(dtype)


def apply_rotary(x: torch.Tensor, cos_sin: torch.Tensor) -> torch.Tensor:
    """x [B, H, T, D]; cos_sin [B, T, P, 2] with 2P = D/2. Pair (a, b) -> (a cos - b sin, b cos + a sin)."""
    rot = 2 * cos_sin.shape[-2]
    x_rot, x_pass = x[..., :rot], x[..., rot:]
    pairs = x_rot.unflatten(-1, (-1, 2))
    a, b = pairs[..., 0], pairs[..., 1]
    cos, sin = cos_sin[:, None, ..., 0], cos_sin[:, None, ..., 1]
    out = torch.stack((a * cos - b * sin, b * cos + a * sin), dim=-1).flatten(-2)
    return torch.cat((out, x_pass), dim=-1)
