"""Attention backends: where K/V storage and masking live.

The decoder calls ``attn(layer, q, k, v)`` with the NEW tokens' q [B, H, T, D] and k/v
[B, KV, T, D] (rotary applied, kv heads not repeated) and gets [B, H, T, D] back. The serving
engine brings its own backend (paged / static cache, CUDA graphs); ``DynamicKVCache`` is the
simple one for generate.py, the ``logits`` command and the parity tests.
"""
from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F


class AttentionBackend(Protocol):
    def __call__(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor: ...


def sdpa(q, k, v, mask=None, is_causal=False):
    """SDPA with grouped kv heads: query head h uses kv head h // (H / KV) (facts §8)."""
    if k.shape[1] != q.shape[1]:
        rep = q.shape[1] // k.shape[1]
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)


class DynamicKVCache:
    """Per-layer K/V appended on every call; causal attention plus an optional key-padding mask.

    ``key_padding_mask`` [B, S] (1 = real token) covers the tokens of the first call (the expanded
    prompt); tokens appended later count as real. Pad queries may see themselves so that no
    attention row is empty (an empty row would give NaN, and NaN in a pad's values poisons the
    real rows through 0 * NaN); their outputs are never used.
    """

    def __init__(self, n_layers: int, key_padding_mask: torch.Tensor | None = None):
        self.k: list[torch.Tensor | None] = [None] * n_layers
        self.v: list[torch.Tensor | None] = [None] * n_layers
        if key_padding_mask is not None and bool(key_padding_mask.all()):
            key_padding_mask = None
        self.key_padding_mask = None if key_padding_mask is None else key_padding_mask.bool()

    @property
    def length(self) -> int:
        return 0 if self.k[0] is None else self.k[0].shape[2]

    def __call__(self, layer: int, q, k, v):
        past = 0 if self.k[layer] is None else self.k[layer].shape[2]
        if past:
            k = torch.cat((self.k[layer], k), dim=2)
            v = torch.cat((self.v[layer], v), dim=2)
        self.k[layer], self.v[layer] = k, v
        T, S = q.shape[2], k.shape[2]
        if self.key_padding_mask is None:
            if past == 0:                      # prefill: plain causal
                return sdpa(q, k, v, is_causal=T > 1)
            if T == 1:                         # decode step: sees every cached key
                return sdpa(q, k, v)
            return sdpa(q, k, v, mask=self._causal(past, T, S, q.device))
        return sdpa(q, k, v, mask=self._mask(past, T, S, q.device))

    @staticmethod
    def _causal(past, T, S, device):
        qi = torch.arange(past, past + T, device=device)[:, None]
        return torch.arange(S, device=device)[None, :] <= qi

    def _mask(self, past, T, S, device):
        valid = self.key_padding_mask.to(device)
        if valid.shape[1] < S:
            valid = F.pad(valid, (0, S - valid.shape[1]), value=True)
        qi = torch.arange(past, past + T, device=device)[:, None]
        kj = torch.arange(S, device=device)[None, :]
        allowed = ((kj <= qi) & valid[:, None, :]) | (kj == qi)   # [B, T, S]
        return allowed[:, None]
