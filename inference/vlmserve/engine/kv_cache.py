"""Preallocated KV cache in sequence slots, and the attention backend that reads and writes it.

The cache is one tensor per K and V: [layers, slots, kv_heads, slot_len, head_dim], allocated once,
so memory use is fixed at start-up and admission can never run the GPU out of memory. Running
sequences always occupy slots 0..n-1 (a finished sequence's slot is refilled by moving the last one
down), so a decode step reads `cache[:, :n]` as a plain view: no gather, and a fixed shape per batch
bucket that CUDA graphs can capture.

`SlotAttention` implements the model's `AttentionBackend` protocol; the engine sets a plan (which
slots, where the new tokens go) before each forward, and the model code never knows.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..attention import causal_after_cache, causal_prefill, expand_kv
from ..kernel_choice import env_choice, runs_triton


def to_device(values: list, device: torch.device) -> torch.Tensor:
    """A long tensor of `values` (ints, or equal-length lists of them) on `device`, without the host waiting for the GPU: a plain copy from pageable
    memory waits for all the work queued on the stream (the vision tower, when a prefill plans its decoder pass),
    and the GPU then idles while the host queues the next kernels."""
    t = torch.tensor(values, dtype=torch.long)
    return t.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else t


class SlotKVCache:
    def __init__(self, n_layers: int, n_slots: int, slot_len: int, n_kv_heads: int, head_dim: int,
                 dtype: torch.dtype, device: torch.device):
        shape = (n_layers, n_slots, n_kv_heads, slot_len, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.n_slots, self.slot_len = n_slots, slot_len

    @staticmethod
    def bytes_per_token(n_layers: int, n_kv_heads: int, head_dim: int, dtype: torch.dtype) -> int:
        return 2 * n_layers * n_kv_heads * head_dim * torch.tensor([], dtype=dtype).element_size()

    def move(self, src: int, dst: int, length: int) -> None:
        self.k[:, dst, :, :length] = self.k[:, src, :, :length]
        self.v[:, dst, :, :length] = self.v[:, src, :, :length]


class PrefixStore:
    """Image-prefix KV kept after its first use, keyed by (tokens before the image, image hash).

    Entries live in their own preallocated buffer; a hit is one device copy into the new slot
    instead of re-running the vision tower and ~1600 tokens of prefill.
    """

    def __init__(self, cache: SlotKVCache, entries: int, entry_len: int):
        n_layers, _, n_kv, _, d = cache.k.shape
        shape = (n_layers, max(entries, 0), n_kv, entry_len, d)
        self.k = torch.zeros(shape, dtype=cache.k.dtype, device=cache.k.device)
        self.v = torch.zeros(shape, dtype=cache.k.dtype, device=cache.k.device)
        self.entry_len = entry_len
        self.capacity = max(entries, 0)
        self._index: dict[tuple, int] = {}   # key -> entry; insertion order is the LRU order
        self._length: dict[tuple, int] = {}

    def lookup(self, key: tuple) -> int | None:
        entry = self._index.pop(key, None)
        if entry is not None:
            self._index[key] = entry  # most recently used goes last
        return entry

    def __contains__(self, key: tuple) -> bool:
        """Whether `key` is stored, without making it the most recently used."""
        return key in self._index

    def length(self, key: tuple) -> int:
        return self._length[key]

    def save(self, key: tuple, cache: SlotKVCache, slot: int, length: int) -> None:
        if self.capacity == 0 or length > self.entry_len or key in self._index:
            return
        if len(self._index) < self.capacity:
            entry = len(self._index)
        else:
            old = next(iter(self._index))
            entry = self._index.pop(old)
            self._length.pop(old)
        self._index[key] = entry
        self._length[key] = length
        self.k[:, entry, :, :length] = cache.k[:, slot, :, :length]
        self.v[:, entry, :, :length] = cache.v[:, slot, :, :length]

    def load(self, key: tuple, cache: SlotKVCache, slot: int) -> int:
        entry, length = self._index[key], self._length[key]
        cache.k[:, slot, :, :length] = self.k[:, entry, :, :length]
        cache.v[:, slot, :, :length] = self.v[:, entry, :, :length]
        return length


DECODE_ATTENTION_CHOICES = ("triton", "torch")


def decode_attention_choice() -> str:
    """VLMSERVE_DECODE_ATTENTION's value, "triton" when unset (benches record it with their figures)."""
    return env_choice("VLMSERVE_DECODE_ATTENTION", DECODE_ATTENTION_CHOICES)


def _fused_decode(device: torch.device):
    """engine/triton_decode.py's one-kernel decode attention on a CUDA device (or in Triton's interpreter), unless
    VLMSERVE_DECODE_ATTENTION=torch; else None: the torch path below, which CPU runs. Measured on an H100 with its
    rotation, per layer 2.4-4.5x faster than the torch path with the rotary kernels (bench/decode_attention_check.py),
    and bf16 decode per row 1.40x / 1.42x / 1.98x at batch 1 / 16 / 64."""
    if decode_attention_choice() != "triton" or not runs_triton(device):
        return None
    from .triton_decode import decode_attention
    return decode_attention


class SlotAttention:
    """AttentionBackend over a SlotKVCache. Call `plan_prefill` or `plan_decode` before each forward."""

    def __init__(self, cache: SlotKVCache):
        self.cache = cache
        self.mode = "prefill"
        device = cache.k.device
        self._arange = torch.arange(cache.slot_len, device=device)
        self._fused_decode = _fused_decode(device)

    # ---- plans -----------------------------------------------------------------------------
    def plan_prefill(self, slots: list[int], starts: list[int]) -> None:
        """Row b's new tokens go to slot `slots[b]` from position `starts[b]` on (rows right-padded)."""
        device = self.cache.k.device
        self.mode = "prefill"
        self.slots = to_device(slots, device)
        self.first_slot = slots[0]
        self.starts = to_device(starts, device)
        self.max_start = max(starts)
        self.fresh = self.max_start == 0

    def plan_decode(self, cache_pos: torch.Tensor, kv_len: int) -> None:
        """Rows are slots 0..B-1; row b's token goes to `cache_pos[b]`; keys beyond `kv_len` are unused.

        `cache_pos` may be a static buffer that a CUDA graph reads; `kv_len` is fixed per graph."""
        self.mode = "decode"
        self.cache_pos = cache_pos
        self.kv_len = kv_len
        if self.rotates:
            return                    # reads each row's position itself: no mask
        # The mask as an additive float32 bias, made once per step instead of once per layer (a decode step is
        # ~40 layers of small kernels on a CUDA graph: each one counts).
        visible = self._arange[None, :kv_len] <= cache_pos[:, None]              # [B, S]
        self.decode_bias = torch.zeros(visible.shape, dtype=torch.float32, device=visible.device).masked_fill_(
            ~visible, float("-inf"))[:, None, None, :]

    # ---- AttentionBackend ------------------------------------------------------------------
    @property
    def rotates(self) -> bool:
        """Whether the planned forward's attention rotates q and k itself: a decode step on the fused kernel."""
        return self.mode == "decode" and self._fused_decode is not None

    def __call__(self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, rotary=None) -> torch.Tensor:
        if self.mode == "decode":
            return self._decode(layer, q, k, v, rotary)
        return self._prefill(layer, q, k, v)

    def _prefill(self, layer, q, k, v):
        b, n_heads, t, _ = q.shape
        groups = n_heads // k.shape[1]
        kc, vc = self.cache.k[layer], self.cache.v[layer]
        # Padding tokens past a row's end may be written too; they sit beyond that row's length, so no
        # query ever sees them before decode overwrites them. Clamping keeps them inside the slot.
        pos = (self.starts[:, None] + self._arange[None, :t]).clamp_(max=self.cache.slot_len - 1)
        rows = self.slots[:, None]
        kc[rows, :, pos] = k.transpose(1, 2).to(kc.dtype)
        vc[rows, :, pos] = v.transpose(1, 2).to(vc.dtype)
        if self.fresh:
            # Whole prompts from position 0: causal attention among the new tokens (flash kernel).
            return causal_prefill(q, k, v)
        s = self.max_start + t
        if b == 1:
            # one row after its cached tokens (a request's own text after a shared image prefix): flash reads the
            # cache's grouped heads as they are, where the masked path below copies them out to every query head
            one = slice(self.first_slot, self.first_slot + 1)
            out = causal_after_cache(q, kc[one, :, :s], vc[one, :, :s])
            if out is not None:
                return out
        keys = expand_kv(kc[self.slots, :, :s], groups)
        values = expand_kv(vc[self.slots, :, :s], groups)
        visible = self._arange[None, None, :s] <= pos[:, :, None]        # [B, T, S]
        return F.scaled_dot_product_attention(q, keys.to(q.dtype), values.to(q.dtype), attn_mask=visible[:, None])

    def _decode(self, layer, q, k, v, rotary):
        if self._fused_decode is not None:
            return self._fused_decode(q, k, v, self.cache.k[layer], self.cache.v[layer], self.cache_pos, rotary,
                                      max_context=self.kv_len)
        b, n_heads, _, d = q.shape
        n_kv = k.shape[1]
        kc, vc = self.cache.k[layer][:b], self.cache.v[layer][:b]
        rows = self._arange[:b]
        kc[rows, :, self.cache_pos] = k[:, :, 0].to(kc.dtype)
        vc[rows, :, self.cache_pos] = v[:, :, 0].to(vc.dtype)
        keys, values = kc[:, :, :self.kv_len], vc[:, :, :self.kv_len]
        # One new token per row: fold the query heads of a kv group into the "query length" axis,
        # so K/V are read once per kv head instead of being expanded 16x.
        qg = q.reshape(b, n_kv, n_heads // n_kv, d)
        scores = torch.matmul(qg, keys.transpose(-1, -2).to(q.dtype))
        # bias + scale * scores in float32, one kernel (the same values as scaling the float32 scores and
        # masking them: the bias is 0 or -inf)
        scores = torch.add(self.decode_bias, scores, alpha=1.0 / math.sqrt(d))
        probs = torch.softmax(scores, dim=-1).to(q.dtype)
        out = torch.matmul(probs, values.to(q.dtype))                        # [B, n_kv, groups, D]
        return out.reshape(b, n_heads, 1, d)
