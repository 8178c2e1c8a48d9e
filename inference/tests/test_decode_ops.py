"""The decoder's per-step ops in their few-kernel forms against the formulas they replace: rotary as
x * c + pair_swap(x) * s (q and k of a layer in one pass), and the slot cache's decode attention with its
mask made once per step."""
from __future__ import annotations

import math

import pytest
import torch

from vlmserve.engine.kv_cache import SlotAttention, SlotKVCache
from vlmserve.rotary import RotaryTable, apply_rotary


def pairwise_rotary(x: torch.Tensor, cos_sin: torch.Tensor) -> torch.Tensor:
    """The GLM-4 formula on x [B, H, T, D], cos_sin [B, T, P, 2]: pairs (a, b) of the first 2P dims become
    (a cos - b sin, b cos + a sin), each product and sum rounded in x's dtype."""
    rot = 2 * cos_sin.shape[-2]
    pairs = x[..., :rot].unflatten(-1, (-1, 2))
    a, b = pairs[..., 0], pairs[..., 1]
    cos, sin = cos_sin[:, None, ..., 0], cos_sin[:, None, ..., 1]
    out = torch.stack((a * cos - b * sin, b * cos + a * sin), dim=-1).flatten(-2)
    return torch.cat((out, x[..., rot:]), dim=-1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_rotary_equals_the_pairwise_formula_bit_for_bit(dtype):
    g = torch.Generator().manual_seed(0)
    table = RotaryTable(head_dim=32, max_positions=4096, base=10000.0 * 500)
    table.build()
    positions = torch.randint(0, 4096, (3, 5), generator=g)
    x = (torch.randn(3, 5, 6, 32, generator=g) * 4).to(dtype)           # [B, T, heads, D]
    got = apply_rotary(x, table(positions, dtype))
    want = pairwise_rotary(x.transpose(1, 2), table.cos_sin[positions].to(dtype)).transpose(1, 2)
    assert got.dtype == dtype and got.shape == x.shape
    assert torch.equal(got, want)


def test_rotary_leaves_the_unrotated_half_alone():
    table = RotaryTable(head_dim=8, max_positions=16)
    table.build()
    x = torch.arange(2 * 8, dtype=torch.float32).view(1, 1, 2, 8) + 1
    got = apply_rotary(x, table(torch.tensor([[7]]), torch.float32))
    assert torch.equal(got[..., 4:], x[..., 4:])
    assert not torch.equal(got[..., :4], x[..., :4])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_slot_decode_attention_sees_exactly_the_cached_keys(dtype):
    """Rows at different cache positions, query heads grouped over kv heads: each row attends to its keys
    0..cache_pos (the new one included) and nothing after, as plain softmax attention over those keys."""
    g = torch.Generator().manual_seed(1)
    n_layers, n_slots, slot_len, n_kv, groups, d = 2, 4, 40, 2, 3, 16
    cache = SlotKVCache(n_layers, n_slots, slot_len, n_kv, d, dtype, torch.device("cpu"))
    cache.k.copy_(torch.randn(cache.k.shape, generator=g))
    cache.v.copy_(torch.randn(cache.v.shape, generator=g))
    attn = SlotAttention(cache)
    cache_pos = torch.tensor([0, 17, 31])
    attn.plan_decode(cache_pos, 32)
    b = len(cache_pos)
    q = torch.randn(b, n_kv * groups, 1, d, generator=g).to(dtype)
    k = torch.randn(b, n_kv, 1, d, generator=g).to(dtype)
    v = torch.randn(b, n_kv, 1, d, generator=g).to(dtype)
    out = attn(1, q, k, v)
    assert out.shape == (b, n_kv * groups, 1, d)
    for row, pos in enumerate(cache_pos.tolist()):
        keys = cache.k[1, row, :, :pos + 1].float()                       # [kv, S, D], new key written at pos
        values = cache.v[1, row, :, :pos + 1].float()
        assert torch.equal(cache.k[1, row, :, pos], k[row, :, 0])
        for h in range(n_kv * groups):
            kv = h // groups
            w = torch.softmax(keys[kv] @ q[row, h, 0].float() / math.sqrt(d), dim=-1)
            want = w @ values[kv]
            tol = 1e-5 if dtype == torch.float32 else 3e-2
            assert torch.allclose(out[row, h, 0].float(), want, atol=tol, rtol=tol), (row, h)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_residual_add_fused_into_the_next_norm_changes_no_value(fixture_model, fixture_inputs, dtype):
    """The encoder adds each block's MLP output in the next block's input norm (one kernel): the hidden states
    and the traced layer inputs equal those of x + MLP(...) after every block, bit for bit."""
    import copy

    from vlmserve.attention import DynamicKVCache

    model = copy.deepcopy(fixture_model).to(dtype)
    enc = model.transformer.encoder
    ids = fixture_inputs["text_input_ids"]
    embeds, positions = model.embed(ids, None, None)
    cos_sin = model.transformer.rotary(positions, embeds.dtype)
    trace = {}
    fused = enc(embeds, cos_sin, DynamicKVCache(len(enc.layers)), trace=trace)
    x, inputs, cache = embeds, [], DynamicKVCache(len(enc.layers))
    for layer in enc.layers:
        inputs.append(x)
        x = layer(x, cos_sin, cache)                    # no carry: the plain residual add
    assert torch.equal(fused, enc.final_layernorm(x))
    assert torch.equal(trace["hidden_states"], torch.stack(inputs + [x]))


def test_a_decode_layer_stays_within_its_op_count():
    """bench/decode_op_count.py on this tree: a decode layer's non-view ops (each a kernel in the step's CUDA
    graph) stay at or below this session's count, and rotary no longer stacks or concatenates per layer."""
    from conftest import INFERENCE, bench_module

    res = bench_module("decode_op_count").count(INFERENCE)
    assert res["ops_per_layer"] <= 35, res["per_layer"]
    assert "stack" not in res["per_layer"] and "cat" not in res["per_layer"]
    assert res["per_layer"].get("linear") == 4
