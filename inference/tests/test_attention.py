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
