"""The NF4 kernel layout (vlmserve.quant.nf4_layout) on the CPU: it is a permutation of bitsandbytes' bytes that the
way back undoes, it matches its index formula, a layer moved into it still computes and exports the same weight,
and the GPU's dequantizer of that layout (triton_nf4, in Triton's interpreter) writes the same values bit for bit."""
from __future__ import annotations

import pytest
import torch

from vlmserve.quant import nf4_layout
from vlmserve.quant.bnb_format import to_bnb_tensors
from vlmserve.quant.linear import NF4Linear
from vlmserve.quant.nf4 import quantize_nf4, unpack_indices


@pytest.mark.parametrize("n,k,double_quant", [(64, 128, False), (192, 320, True), (1088, 4096, True)])
def test_layout_round_trips_and_is_its_formula(n, k, double_quant, monkeypatch):
    # 1088 x 4096 with 32 KiB steps: several chunks of rows, the last one shorter
    monkeypatch.setattr(nf4_layout, "_CHUNK_BYTES", 1 << 15)
    q = quantize_nf4(torch.randn(n, k), double_quant=double_quant)
    scales = q.nested.q if double_quant else q.absmax
    packed, scales_t = nf4_layout.to_kernel_layout(q.packed, scales, n, k)
    assert packed.shape == q.packed.shape and scales_t.shape == (k // 64, n) and scales_t.dtype == scales.dtype
    assert torch.equal(scales_t, scales.reshape(n, k // 64).t())
    row, col = nf4_layout.index(n, k)
    idx = unpack_indices(q.packed, n * k).reshape(n, k).numpy()
    got = packed.numpy()
    assert (got >> 4 == idx[row, col]).all() and (got & 15 == idx[row, col + 8]).all()
    back, scales_back = nf4_layout.to_bnb_layout(packed, scales_t, n, k)
    assert torch.equal(back, q.packed) and torch.equal(scales_back, scales)


def test_layout_refuses_shapes_it_cannot_hold():
    assert nf4_layout.fits(4096, 13696) and not nf4_layout.fits(1000, 4096) and not nf4_layout.fits(64, 96)
    with pytest.raises(ValueError, match="N % 64"):
        nf4_layout.to_kernel_layout(torch.zeros(1000 * 64 // 2, dtype=torch.uint8), torch.ones(1000), 1000, 64)


@pytest.mark.parametrize("double_quant", [False, True])
def test_a_layer_in_the_kernel_layout_computes_and_exports_the_same(double_quant):
    """A layer moved to the GPU's layout and back to the CPU (its buffers stay permuted): the CPU forward, its
    dequantized weight and its bitsandbytes export are those of the layer never moved."""
    g = torch.Generator().manual_seed(1)
    w, b = torch.randn(128, 192, generator=g) * 0.02, torch.randn(128, generator=g)
    plain = NF4Linear.from_weight(w, b, torch.float32, double_quant=double_quant)
    moved = NF4Linear.from_weight(w, b, torch.float32, double_quant=double_quant)
    moved._to_kernel_layout()
    assert moved.kernel_layout and not torch.equal(moved.packed, plain.packed)
    x = torch.randn(3, 192, generator=g)
    assert torch.equal(moved(x), plain(x))
    assert torch.equal(moved.dequantize(), plain.dequantize())
    exported, expected = to_bnb_tensors("w", moved), to_bnb_tensors("w", plain)
    assert exported.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(exported[key], value), key


_INTERPRETED = r"""
import torch
from vlmserve.quant import nf4_layout, triton_nf4 as T
from vlmserve.quant.nf4 import quantize_nf4
g = torch.Generator().manual_seed(0)
for n, k, dq, dt, r0, r1 in ((128, 128, False, torch.float32, 64, 128), (128, 320, True, torch.float16, 0, 128),
                             (192, 1024, True, torch.float16, 64, 192), (64, 832, False, torch.float32, 0, 64)):
    q = quantize_nf4(torch.randn(n, k, generator=g), double_quant=dq)
    ref = q.dequantize(dt)
    packed, scales = nf4_layout.to_kernel_layout(q.packed, q.nested.q if dq else q.absmax, n, k)
    extra = dict(qabs=scales, code2=q.nested.code, nested=q.nested.nested_absmax, offset=q.nested.offset) if dq \
        else dict(absmax=scales)
    op = T.NF4Operand(packed=packed, code=q.code, n=n, k=k, kernel_layout=True, **extra)
    out = torch.full((r1 - r0, k), float("nan"), dtype=dt)
    T.dequantize_rows(op, r0, r1, out)
    assert torch.equal(out, ref[r0:r1]), (n, k, dq, dt, (out.float() - ref[r0:r1].float()).abs().max())
try:
    T.dequantize_rows(op, 8, 64, out)
    raise AssertionError("rows not on 16-row groups were cut out")
except ValueError:
    pass
print("ok")
"""


def test_kernel_layout_dequantizer_in_triton_interpreter():
    """triton_nf4's dequantizer of the kernel layout (the prefill's chunks, dense_weight) gives bitsandbytes' values
    exactly: float32 and 8-bit absmax, float32 and float16 out (the interpreter rounds no bf16), row ranges starting mid-weight, a K of 13 quant blocks
    (the program's last block range partly past K)."""
    pytest.importorskip("triton")
    from triton_interpreter import run_interpreted
    run_interpreted(_INTERPRETED)
