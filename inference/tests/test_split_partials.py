"""Split-K partials summed by their consumer (vlmserve.quant.partials): the residual add + RMSNorm and SwiGLU that
read an NF4 linear's unsummed partials give exactly (bitwise) what they give on the summed output.

On CPU: the Partials type and the plain-torch consumers. Where Triton is installed: the NF4 dot kernel leaving its
partials and the Triton consumers reading them, in Triton's interpreter. On a GPU: a decoder block with NF4 layers,
partials on and off.
"""
from __future__ import annotations

import pytest
import torch

from vlmserve import fused
from vlmserve.quant.partials import Partials, as_tensor


def _parts(splits=3, rows=5, cols=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(splits, rows, cols, generator=g)


def test_total_is_the_ordered_sum_rounded_once():
    parts = _parts()
    p = Partials(parts, torch.bfloat16, (5, 8))
    want = ((parts[0] + parts[1]) + parts[2]).to(torch.bfloat16)
    assert torch.equal(p.total(), want)
    assert torch.equal(as_tensor(p), want) and as_tensor(want) is want


def test_chunk_gives_column_halves_of_the_same_partials():
    parts = _parts(cols=8)
    gate, up = Partials(parts, torch.float16, (1, 5, 8)).chunk(2, dim=-1)
    assert gate.shape == up.shape == (1, 5, 4)
    assert torch.equal(gate.total(), Partials(parts, torch.float16, (1, 5, 8)).total()[..., :4])
    assert torch.equal(up.total(), Partials(parts, torch.float16, (1, 5, 8)).total()[..., 4:])
    viewed = Partials(parts, torch.float16, (5, 8)).view(1, 5, 8)
    assert viewed.shape == (1, 5, 8) and viewed.parts is parts
    with pytest.raises(ValueError, match="keep their columns"):
        Partials(parts, torch.float16, (5, 8)).view(10, 4)
    with pytest.raises(ValueError, match="equal column slices"):
        Partials(parts, torch.float16, (5, 8)).chunk(3)
    with pytest.raises(ValueError, match="float32"):
        Partials(parts.half(), torch.float16, (5, 8))


def test_plain_torch_consumers_take_partials():
    parts = _parts(cols=16)
    p = Partials(parts, torch.float32, (5, 16))
    x = torch.randn(5, 16)
    w = torch.rand(16) + 0.5
    s1, n1 = fused.add_rms_norm(x, p, w, 1e-5)
    s2, n2 = fused.add_rms_norm(x, p.total(), w, 1e-5)
    assert torch.equal(s1, s2) and torch.equal(n1, n2)
    gate, up = p.chunk(2)
    assert torch.equal(fused.swiglu(gate, up), fused.swiglu(gate.total(), up.total()))


_INTERPRETED = r"""
import torch
from vlmserve import triton_fused as TF
from vlmserve.quant import triton_nf4 as T
from vlmserve.quant.linear import NF4Linear
from vlmserve.quant.partials import Partials
g = torch.Generator().manual_seed(1)
dt = torch.float16                        # the interpreter has no bf16 dot
cfg = T._dot(16, 16, 4, 1, 1, lut=0, waves=64)
for n, k in ((64, 1024), (40, 1152)):     # 4 splits (the first tiles N evenly, the second is masked)
    lin = NF4Linear.from_weight(torch.randn(n, k, generator=g) * 0.05, None, dt)
    x = torch.randn(5, k, generator=g).to(dt)
    summed = T.nf4_matmul(x, lin._operand(), None, config=cfg)
    left = T.nf4_matmul(x, lin._operand(), None, config=cfg, leave_splits=True)
    assert isinstance(left, Partials) and left.parts.shape[0] > 1, type(left)
    assert torch.equal(left.total(), summed)
    # a layer with a bias sums its own partials
    biased = T.nf4_matmul(x, lin._operand(), torch.randn(n, generator=g).to(dt), config=cfg, leave_splits=True)
    assert isinstance(biased, torch.Tensor)
    res = torch.randn(5, n, generator=g).to(dt)
    w = (torch.rand(n, generator=g) + 0.5).to(dt)
    a = TF.add_rms_norm(res, left, w, 1e-5)
    b = TF.add_rms_norm(res, summed, w, 1e-5)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    gate, up = left.chunk(2)
    sg, su = summed.chunk(2, dim=-1)
    assert torch.equal(TF.swiglu(gate, up), TF.swiglu(sg.contiguous(), su.contiguous()))
print("ok")
"""


def test_triton_consumers_sum_the_nf4_kernels_partials_in_the_interpreter():
    pytest.importorskip("triton")
    from triton_interpreter import run_interpreted
    run_interpreted(_INTERPRETED)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_decoder_block_with_nf4_gives_the_same_output_with_partials_on_and_off(monkeypatch):
    """A full-size GLM-4V-9B decoder block, its three NF4 layers whose consumers sum partials, at 16 decode rows
    (where the kernels split K): the same bits with the partials left to the consumers as with them summed first."""
    pytest.importorskip("triton")
    from vlmserve import decoder
    from vlmserve.attention import causal_prefill
    from vlmserve.config import glm4v_9b
    from vlmserve.quant.linear import NF4Linear
    from vlmserve.rotary import RotaryTable

    cfg = glm4v_9b()
    torch.manual_seed(0)
    block = decoder.Block(cfg, 0)
    for p in block.parameters():
        torch.nn.init.normal_(p, 1.0 if p.dim() == 1 else 0.0, 0.02)
    block = block.to("cuda", torch.bfloat16)
    for name in ("self_attention.dense", "mlp.dense_h_to_4h", "mlp.dense_4h_to_h"):
        parent, attr = block.get_submodule(name.rsplit(".", 1)[0]), name.rsplit(".", 1)[1]
        setattr(parent, attr, NF4Linear.from_weight(getattr(parent, attr).weight.detach(), None, torch.bfloat16))
    rotary = RotaryTable(cfg.head_dim, cfg.rotary_positions, base=10000.0 * cfg.rope_ratio)
    rotary.build("cuda")
    x = torch.randn(16, 1, cfg.hidden_size, device="cuda", dtype=torch.bfloat16)
    cos_sin = rotary(torch.zeros(16, 1, dtype=torch.long, device="cuda"), torch.bfloat16)

    def attn(layer, q, k, v):
        return causal_prefill(q, k, v)

    leave = decoder.leave_splits
    seen = []

    def counting(layer, h):
        y = leave(layer, h)
        seen.append(isinstance(y, Partials))
        return y
    monkeypatch.setattr(decoder, "leave_splits", counting)
    residual = torch.randn_like(x)          # the previous block's MLP output, which this block's input norm adds
    carry_on = [residual]
    x_on = block(x, cos_sin, attn, carry_on)
    monkeypatch.setattr(decoder, "leave_splits", lambda layer, h: layer(h))
    carry_off = [residual]
    x_off = block(x, cos_sin, attn, carry_off)
    assert any(seen), "no NF4 layer split K at 16 rows: nothing was tested"
    assert torch.equal(x_on, x_off)
    assert torch.equal(as_tensor(carry_on[0]), carry_off[0])      # this block's MLP output, for the next block
