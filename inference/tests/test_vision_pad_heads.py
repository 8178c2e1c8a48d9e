"""Attention.pad_heads: the vision tower's heads stored wider with zero dims give the same outputs (16-bit and FP8
layers), 4-bit layers are left as they are, and the engine's switch refuses unknown values."""
from __future__ import annotations

import copy

import pytest
import torch

from vlmserve.quant.fp8 import FP8Linear
from vlmserve.quant.linear import NF4Linear
from vlmserve.tiny import tiny_config
from vlmserve.vision import VisionTower, pad_attention_heads, pad_heads_choice


def tower() -> VisionTower:
    cfg = tiny_config()
    t = VisionTower(cfg)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in t.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (p.shape[-1] ** -0.5 if p.dim() > 1 else 0.1))
    return t.eval().requires_grad_(False)


def test_padded_heads_give_the_same_tower_output():
    model = tower()
    pixels = torch.randn(2, 3, model.image_size, model.image_size, generator=torch.Generator().manual_seed(1))
    want = model(pixels)
    padded = copy.deepcopy(model)
    assert pad_attention_heads(padded, multiple=16) == len(padded.transformer.layers)
    att = padded.transformer.layers[0].attention
    assert (att.head_dim, att.width) == (8, 16)
    assert att.query_key_value.weight.shape == (3 * 4 * 16, 32) and att.dense.weight.shape == (32, 4 * 16)
    # the real dims keep their weights, in their heads' places; the pad dims are zero
    rows = att.query_key_value.weight.view(3, 4, 16, 32)
    orig = model.transformer.layers[0].attention.query_key_value.weight.view(3, 4, 8, 32)
    assert torch.equal(rows[:, :, :8], orig) and not rows[:, :, 8:].any()
    torch.testing.assert_close(padded(pixels), want, rtol=1e-5, atol=1e-5)
    assert pad_attention_heads(padded, multiple=16) == 0      # already that wide: nothing to do


def test_padded_fp8_heads_give_the_same_attention_output():
    att = tower().transformer.layers[0].attention
    att.query_key_value = FP8Linear.from_weight(att.query_key_value.weight, att.query_key_value.bias, torch.float32)
    att.dense = FP8Linear.from_weight(att.dense.weight, att.dense.bias, torch.float32)
    x = torch.randn(2, 17, 32, generator=torch.Generator().manual_seed(2))
    want = att(x)
    assert att.pad_heads(16)
    assert isinstance(att.query_key_value, FP8Linear) and att.query_key_value.weight.shape == (192, 32)
    assert att.dense.weight.shape == (32, 64)
    torch.testing.assert_close(att(x), want, rtol=1e-5, atol=1e-5)


def test_four_bit_layers_are_not_padded():
    att = tower().transformer.layers[0].attention
    att.query_key_value = NF4Linear.from_weight(att.query_key_value.weight, att.query_key_value.bias, torch.float32)
    assert not att.pad_heads(16)
    assert att.width == att.head_dim == 8


def test_the_switch_refuses_unknown_values(monkeypatch):
    monkeypatch.delenv("VLMSERVE_VISION_PAD_HEADS", raising=False)
    assert pad_heads_choice() == "off"
    monkeypatch.setenv("VLMSERVE_VISION_PAD_HEADS", "128")
    with pytest.raises(ValueError, match="VLMSERVE_VISION_PAD_HEADS"):
        pad_heads_choice()
