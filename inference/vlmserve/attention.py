"""Attention backends: where K/V storage and masking live.

The decoder calls ``attn(layer, q, k, v)`` with the NEW tokens' q [B, H, T, D] and k/v
[B, KV, T, D] (rotary applied, kv heads not repeated) and gets [B, H, T, D] back. A backend whose
``rotates`` is true at that moment gets q and k unrotated and ``rotary=`` the factors instead. The serving
engine brings its own backend (paged / static cache, CUDA graphs); ``DynamicKVCache`` is the
simple one for generate.py, the ``logits`` command and the parity tests.
"""
from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

# Causal prefill without cuDNN attention: PyTorch puts cuDNN first on Hopper in CUDA 13 builds, and on that
# path a 1.6k-token GLM-4V prefill held ~0.55 GiB more than its other activations together (H100 bench);
# flash / memory-efficient attention keep O(T) memory. Math stays as the last resort (CPU, odd shapes).
PREFILL_BACKENDS = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


# Unmasked attention over many tokens (the vision tower: 16 heads x 112 dims x 6401 tokens): cuDNN's fused
# kernel runs it at about twice flash's rate on Hopper (541 vs 268 TFLOP/s measured on an H200) with O(T)
# memory; the list is a priority order, and each backend that cannot take the inputs (CPU, dtype, head
# dim) falls through to the next, MATH last.
FULL_BACKENDS = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                 SDPBackend.MATH]


def _backends(order):
    try:
        return sdpa_kernel(order, set_priority=True)
    except TypeError:        # older PyTorch: the allowed set only, in PyTorch's own order
        return sdpa_kernel(order)


def full_attention(q, k, v):
    """Bidirectional attention, q/k/v [B, H, T, D] with equal heads."""
    with _backends(FULL_BACKENDS):
        return F.scaled_dot_product_attention(q, k, v)


_GQA_FLASH = [True]   # until the flash kernel refuses grouped kv heads once


def causal_prefill(q, k, v):
    """Causal attention among new tokens only (no cache before them, no padding): no mask tensor. On CUDA the flash
    kernel reads the grouped kv heads as they are (`enable_gqa`); expanded, each layer of an 8-prompt prefill first
    copied K and V out to all 32 query heads (2 x 105 MB)."""
    if (q.is_cuda and q.dtype in (torch.float16, torch.bfloat16) and k.shape[1] != q.shape[1]   # flash's dtypes
            and _GQA_FLASH[0]):
        try:
            with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
                return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        except RuntimeError:   # no flash kernel for these inputs (or this build): expanded, on any backend
            _GQA_FLASH[0] = False
    with sdpa_kernel(PREFILL_BACKENDS):
        return sdpa(q, k, v, is_causal=True)


_FLASH_AFTER_CACHE = [True]   # until the flash kernel refuses these inputs once


def causal_after_cache(q, k, v):
    """One row's new tokens after its cached ones: q [1, H, T, D] are the last T of the S positions whose keys and
    values k / v [1, KV, S, D] hold (grouped kv heads, not repeated); query i sees keys 0..S-T+i. On CUDA the flash
    kernel, whose causal mask is aligned at the bottom right when T < S, reads the cache as it is; elsewhere (or
    if flash refuses the inputs) None: the caller masks the expanded keys itself."""
    if not (q.is_cuda and q.dtype in (torch.float16, torch.bfloat16) and _FLASH_AFTER_CACHE[0]):
        return None
    try:
        return torch.ops.aten._scaled_dot_product_flash_attention(q, k, v, 0.0, True)[0]
    except RuntimeError:
        _FLASH_AFTER_CACHE[0] = False
        return None


class AttentionBackend(Protocol):
    def __call__(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor: ...


def expand_kv(x: torch.Tensor, groups: int) -> torch.Tensor:
    """[B, kv_heads, S, D] -> [B, kv_heads * groups, S, D]; query head h uses kv head h // groups. Expand + reshape,
    not repeat_interleave: the latter may synchronise with the host, which a CUDA graph capture does not allow."""
    if groups == 1:
        return x
    b, h, s, d = x.shape
    return x[:, :, None].expand(b, h, groups, s, d).reshape(b, h * groups, s, d)


def sdpa(q, k, v, mask=None, is_causal=False):
    """SDPA with grouped kv heads: query head h uses kv head h // (H / KV), as
    in the official multi-query attention."""
    groups = q.shape[1] // k.shape[1]
    return F.scaled_dot_product_attention(q, expand_kv(k, groups), expand_kv(v, groups), attn_mask=mask,
                                          is_causal=is_causal)


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
        else:
            # v (and k, without rotary) may be a view into the layer's fused qkv output: keeping the view
            # would keep all of qkv alive in every layer (0.55 GiB for a 1.6k-token prompt at full size)
            k, v = k.contiguous(), v.contiguous()
        self.k[layer], self.v[layer] = k, v
        T, S = q.shape[2], k.shape[2]
        if self.key_padding_mask is None:
            if past == 0:                      # prefill: plain causal
                return causal_prefill(q, k, v) if T > 1 else sdpa(q, k, v)
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


class StaticKVCache:
    """Preallocated K/V ([layers, B, KV, max_len, D]) written at a device-side position counter:
    no shape in the forward pass depends on the number of stored tokens, so a decode step can be
    captured once as a CUDA graph and replayed. All rows share one write position (left padding
    is masked through ``valid``). The counter advances after the last layer has been called.
    """

    def __init__(self, n_layers: int, batch: int, n_kv: int, max_len: int, head_dim: int,
                 dtype: torch.dtype, device):
        shape = (n_layers, batch, n_kv, max_len, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.valid = torch.ones(batch, max_len, dtype=torch.bool, device=device)
        self.pos = torch.zeros((), dtype=torch.long, device=device)
        self.n_layers, self.max_len = n_layers, max_len
        self._keys = torch.arange(max_len, device=device)

    @classmethod
    def from_dynamic(cls, cache: DynamicKVCache, max_len: int) -> "StaticKVCache":
        k0 = cache.k[0]
        B, KV, S, D = k0.shape
        if max_len < S:
            raise ValueError(f"max_len {max_len} < {S} tokens already cached")
        out = cls(len(cache.k), B, KV, max_len, D, k0.dtype, k0.device)
        for i in range(len(cache.k)):
            out.k[i, :, :, :S] = cache.k[i]
            out.v[i, :, :, :S] = cache.v[i]
        if cache.key_padding_mask is not None:
            out.valid[:, :S] = cache.key_padding_mask.to(k0.device)
        out.pos.fill_(S)
        return out

    def __call__(self, layer: int, q, k, v):
        T = q.shape[2]
        idx = self.pos + torch.arange(T, device=q.device)
        self.k[layer].index_copy_(2, idx, k)
        self.v[layer].index_copy_(2, idx, v)
        kj, qi = self._keys[None, :], idx[:, None]
        allowed = ((kj <= qi) & self.valid[:, None, :]) | (kj == qi)        # [B, T, max_len]
        out = sdpa(q, self.k[layer], self.v[layer], mask=allowed[:, None])
        if layer == self.n_layers - 1:
            self.pos += T
        return out
