"""Causal prefill attention with grouped kv heads: read as they are on CUDA, expanded elsewhere; the same result."""
from __future__ import annotations

import pytest
import torch

from vlmserve import attention


def _qkv(device, dtype, b=2, heads=8, kv=2, t=37, d=64):
    g = torch.Generator(device=device).manual_seed(0)
    q = torch.randn(b, heads, t, d, device=device, generator=g).to(dtype)
    k = torch.randn(b, kv, t, d, device=device, generator=g).to(dtype)
    v = torch.randn(b, kv, t, d, device=device, generator=g).to(dtype)
    return q, k, v


def _expanded(x, groups):
    b, h, t, d = x.shape
    return x[:, :, None].expand(b, h, groups, t, d).reshape(b, h * groups, t, d)


def test_grouped_heads_give_the_expanded_result_on_cpu():
    q, k, v = _qkv("cpu", torch.float32)
    assert torch.equal(attention.causal_prefill(q, k, v), attention.causal_prefill(q, _expanded(k, 4), _expanded(v, 4)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_flash_reads_grouped_heads_on_cuda():
    q, k, v = _qkv("cuda", torch.bfloat16, heads=32, kv=2, t=300, d=128)
    got = attention.causal_prefill(q, k, v)
    assert attention._GQA_FLASH[0], "the flash kernel refused grouped kv heads"
    want = attention.causal_prefill(q, _expanded(k, 16), _expanded(v, 16))
    assert torch.equal(got, want)


def _masked_after_cache(q, k, v):
    """The reference: expanded kv heads, query i of the last T sees keys 0..S-T+i."""
    t, s = q.shape[2], k.shape[2]
    visible = torch.arange(s, device=q.device)[None, :] <= torch.arange(s - t, s, device=q.device)[:, None]
    groups = q.shape[1] // k.shape[1]
    return torch.nn.functional.scaled_dot_product_attention(
        q.float(), _expanded(k, groups).float(), _expanded(v, groups).float(), attn_mask=visible)


def test_attention_after_cache_leaves_cpu_to_the_caller():
    q, k, v = _qkv("cpu", torch.float32, b=1, t=5)
    assert attention.causal_after_cache(q, k, v) is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("t,cached", [(403, 1208), (1, 1610), (300, 0), (77, 5)])
def test_flash_after_cache_aligns_the_causal_mask_at_the_bottom_right(t, cached):
    """New tokens after a row's cached ones (a request's own text after a shared image prefix): flash's causal mask,
    read at the bottom right when the queries are fewer than the keys, against an explicit mask in float32."""
    g = torch.Generator(device="cuda").manual_seed(t)
    q = torch.randn(1, 32, t, 128, device="cuda", generator=g).to(torch.bfloat16)
    k, v = (torch.randn(1, 2, cached + t, 128, device="cuda", generator=g).to(torch.bfloat16) for _ in range(2))
    got = attention.causal_after_cache(q, k, v)
    assert got is not None and attention._FLASH_AFTER_CACHE[0], "the flash kernel refused the inputs"
    want = _masked_after_cache(q, k, v)
    err = (got.float() - want).abs().max().item()
    assert err < 2e-2, err
