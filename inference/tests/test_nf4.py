"""NF4 code book math, packing, double quantization, NF4Linear on CPU, the default policy."""
from __future__ import annotations

import pytest
import torch

from vlmserve.quant.linear import NF4Linear
from vlmserve.quant.nf4 import (NF4_CODE_VALUES, dequantize_nf4, double_quantize_absmax, dynamic_code_8bit,
                                nf4_code, quantize_nf4, unpack_indices)
from vlmserve.quant.policy import should_quantize, unmatched_patterns


def reference_nf4(w: torch.Tensor, blocksize: int = 64):
    """The code-book math written out the slow, obvious way: per block absmax, argmin distance."""
    flat = w.reshape(-1).double().tolist()
    codes = [float(c) for c in NF4_CODE_VALUES]
    idx, absmax, values = [], [], []
    for start in range(0, len(flat), blocksize):
        block = flat[start:start + blocksize]
        a = max(abs(v) for v in block)
        absmax.append(a)
        for v in block:
            t = v / a if a else 0.0
            i = min(range(16), key=lambda j: (abs(t - codes[j]), j))
            idx.append(i)
            values.append(codes[i] * a)
    return idx, absmax, values


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (7, 33), (2, 64), (5, 64), (1, 127), (13, 100), (64, 96)])
def test_quantize_matches_code_book_math(shape):
    g = torch.Generator().manual_seed(sum(shape))
    w = torch.randn(shape, generator=g) * 0.3
    q = quantize_nf4(w)
    n = w.numel()
    idx, absmax, values = reference_nf4(w.to(torch.float32))
    assert q.packed.dtype == torch.uint8 and q.packed.numel() == (n + 1) // 2
    assert q.absmax.dtype == torch.float32 and q.absmax.numel() == -(-n // 64)
    assert unpack_indices(q.packed, n).tolist() == idx
    assert torch.allclose(q.absmax.double(), torch.tensor(absmax, dtype=torch.float64), rtol=0, atol=0)
    deq = q.dequantize(torch.float32)
    assert deq.shape == w.shape
    assert torch.allclose(deq.double().reshape(-1), torch.tensor(values, dtype=torch.float64), atol=1e-7)


def test_nibble_order_and_padding_follow_bitsandbytes():
    # block of 64: -absmax, +absmax, 0, ... -> codes 0, 15, 7; first value in the HIGH nibble
    w = torch.zeros(65)
    w[0], w[1], w[64] = -2.0, 2.0, 0.5
    q = quantize_nf4(w)
    assert q.packed[0].item() == (0 << 4) | 15
    assert q.packed[1].item() == (7 << 4) | 7
    # element 64 is alone in block 2 (zero-padded): code 15 in the high nibble; the low nibble is padding
    assert q.packed.numel() == 33 and q.packed[32].item() >> 4 == 15
    assert q.absmax.tolist() == [2.0, 0.5]


def test_all_zero_block_and_exact_code_values():
    w = torch.zeros(2, 64)
    w[1] = torch.tensor(NF4_CODE_VALUES).repeat(4) * 3.0
    q = quantize_nf4(w)
    assert q.absmax.tolist() == [0.0, 3.0]
    assert torch.equal(q.dequantize(), w)  # code values survive exactly, zeros stay zero


def test_dequantize_casts_and_checks_sizes():
    w = torch.randn(4, 80)
    q = quantize_nf4(w)
    assert q.dequantize(torch.bfloat16).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="bytes"):
        dequantize_nf4(q.packed[:-1], q.absmax, (4, 80))
    with pytest.raises(ValueError, match="absmax"):
        dequantize_nf4(q.packed, q.absmax[:-1], (4, 80))
    with pytest.raises(TypeError):
        quantize_nf4(torch.ones(3, dtype=torch.int32))


def test_dynamic_code_book_is_bitsandbytes_signed_8bit():
    c = dynamic_code_8bit()
    assert c.numel() == 256 and bool((c[1:] > c[:-1]).all())
    assert c[-1].item() == 1.0 and 0.0 in c.tolist()
    # the largest exponent step: magnitudes 10^0 * midpoints of linspace(0.1, 1, 65)
    assert abs(c[-2].item() - (1.0 - 0.9 / 128)) < 1e-6
    # the smallest magnitude: 1e-6 * 0.55
    assert abs(c[c > 0].min().item() - 0.55e-6) < 1e-12


def test_double_quant_round_trip():
    g = torch.Generator().manual_seed(3)
    w = torch.randn(300, 257, generator=g)  # 1205 blocks: 5 nested blocks, the last partial
    plain = quantize_nf4(w)
    dq = quantize_nf4(w, double_quant=True)
    assert dq.absmax is None and dq.nested.q.dtype == torch.uint8
    assert dq.nested.q.numel() == plain.absmax.numel() and dq.nested.nested_absmax.numel() == 5
    assert torch.equal(dq.packed, plain.packed)  # codes come from the exact absmax
    back = dq.absmax_f32()
    assert abs(dq.nested.offset - plain.absmax.mean().item()) < 1e-6
    # 8-bit dynamic quantization of (absmax - mean): error well under 1% of the block range
    centered = (plain.absmax - dq.nested.offset).abs()
    assert (back - plain.absmax).abs().max().item() <= 0.01 * centered.max().item()
    # and it is a real quantization: at most 256 distinct values per 256-block
    assert len(set(back[:256].tolist())) <= 256
    nq = double_quantize_absmax(plain.absmax)
    assert torch.equal(nq.q, dq.nested.q)


def test_nf4_linear_fallback_equals_dequantize_matmul():
    g = torch.Generator().manual_seed(5)
    w, b = torch.randn(24, 96, generator=g), torch.randn(24, generator=g)
    x = torch.randn(2, 3, 96, generator=g)
    for dq in (False, True):
        lin = NF4Linear.from_weight(w, b, compute_dtype=torch.float32, double_quant=dq)
        ref = torch.nn.functional.linear(x, lin.dequantize(torch.float32), b)
        assert torch.equal(lin(x), ref)
        assert [n for n, _ in lin.named_parameters()] == ["bias"]  # codes are buffers, not parameters
    # float32 input into a bfloat16 layer: computed in bf16, handed back as float32
    lin = NF4Linear.from_weight(w, None, compute_dtype=torch.bfloat16)
    y = lin(x)
    assert y.dtype == torch.float32
    ref = torch.nn.functional.linear(x.bfloat16(), lin.dequantize(torch.bfloat16)).float()
    assert torch.equal(y, ref)
    assert lin.weight.dtype == torch.uint8 and lin.weight.numel() == 24 * 96 // 2


def test_nf4_linear_from_quantized_checks_sizes():
    q = quantize_nf4(torch.randn(8, 64))
    with pytest.raises(ValueError, match="packed"):
        NF4Linear.from_quantized(q.packed[:-1], q.absmax, (8, 64), None, torch.float32)
    with pytest.raises(ValueError, match="absmax"):
        NF4Linear.from_quantized(q.packed, q.absmax[:-1], (8, 64), None, torch.float32)
    with pytest.raises(ValueError, match="nested"):
        NF4Linear.from_quantized(q.packed, q.absmax.to(torch.uint8), (8, 64), None, torch.float32)
    lin = NF4Linear.from_quantized(q.packed, q.absmax, (8, 64), None, torch.float32, code=nf4_code())
    assert torch.equal(lin.dequantize(), q.dequantize())


LINEARS = {
    "transformer.vision.transformer.layers.0.attention.query_key_value.weight": True,
    "transformer.vision.transformer.layers.62.attention.dense.weight": True,
    "transformer.vision.transformer.layers.3.mlp.fc1.weight": True,
    "transformer.vision.transformer.layers.3.mlp.fc2.weight": True,
    "transformer.vision.linear_proj.linear_proj.weight": True,
    "transformer.vision.linear_proj.gate_proj.weight": True,
    "transformer.vision.linear_proj.dense_h_to_4h.weight": True,
    "transformer.vision.linear_proj.dense_4h_to_h.weight": True,
    "transformer.encoder.layers.39.self_attention.query_key_value.weight": True,
    "transformer.encoder.layers.0.self_attention.dense.weight": True,
    "transformer.encoder.layers.0.mlp.dense_h_to_4h.weight": True,
    "transformer.encoder.layers.0.mlp.dense_4h_to_h.weight": True,
    "transformer.output_layer.weight": True,
    # kept in the compute dtype
    "transformer.embedding.word_embeddings.weight": False,
    "transformer.vision.patch_embedding.proj.weight": False,
    "transformer.vision.patch_embedding.position_embedding.weight": False,
    "transformer.vision.patch_embedding.cls_embedding": False,
    "transformer.vision.conv.weight": False,
    "transformer.vision.linear_proj.norm1.weight": False,
    "transformer.vision.transformer.layers.0.input_layernorm.weight": False,
    "transformer.vision.transformer.layers.0.attention.query_key_value.bias": False,
    "transformer.encoder.layers.0.self_attention.query_key_value.bias": False,
    "transformer.encoder.layers.0.input_layernorm.weight": False,
    "transformer.encoder.final_layernorm.weight": False,
    "transformer.vision.boi": False,
    "transformer.vision.eoi": False,
}


@pytest.mark.parametrize("name", sorted(LINEARS))
def test_default_policy(name):
    assert should_quantize(name) is LINEARS[name]


def test_keep_16bit_patterns():
    out = "transformer.output_layer.weight"
    fc1 = "transformer.vision.transformer.layers.3.mlp.fc1.weight"
    qkv = "transformer.encoder.layers.31.self_attention.query_key_value.weight"
    assert not should_quantize(out, ["output_layer"])
    assert not should_quantize(out, ["transformer.output_layer"])
    assert not should_quantize(fc1, ["vision"]) and should_quantize(qkv, ["vision"])
    assert not should_quantize(fc1, ["mlp.fc1"]) and should_quantize(fc1, ["mlp.fc2"])
    assert not should_quantize(qkv, ["encoder.layers.3?.*"]) and should_quantize(qkv, ["encoder.layers.2?.*"])
    assert should_quantize(fc1, ["fc"])  # whole path components only
    assert unmatched_patterns(LINEARS, ["output_layer", "fc", "vison"]) == ["fc", "vison"]
