"""The in-place rotary kernel (triton_fused.rotate_) against apply_rotary on a prefill's layout: q and k heads of a
fused qkv output, tokens strided by the whole qkv row. Bit for bit in float32 and fp16 in Triton's interpreter, and in
bf16 on the GPU; the interpreter's own float -> bf16 conversion rounds differently, so there bf16 is held to one bf16
step."""
from __future__ import annotations

import pytest
import torch

from triton_interpreter import run_interpreted

_SCRIPT = r"""
import torch
from vlmserve.rotary import RotaryTable, apply_rotary, rotate_in_place
torch.manual_seed(0)
B, T, H, KV, D = 2, 5, 6, 2, 16
table = RotaryTable(D, 64)
table.build()
for dtype in (torch.bfloat16, torch.float16, torch.float32):
    qkv = torch.randn(B, T, (H + 2 * KV) * D).to(dtype)
    qk = qkv[..., :(H + KV) * D].view(B, T, H + KV, D)
    positions = torch.randint(0, 64, (B, T))
    f = table(positions, dtype)
    want = apply_rotary(qk, f)
    # the largest value the rounding of a product or the sum could be off by, per element
    bound = (qk.float().abs() + qk.float().unflatten(-1, (-1, 2)).flip(-1).flatten(-2).abs()) / 64
    v_before = qkv[..., (H + KV) * D:].clone()
    got = rotate_in_place(qk, f)
    assert got.data_ptr() == qk.data_ptr(), "not in place"
    if dtype == torch.bfloat16:
        assert ((got.float() - want.float()).abs() <= bound).all()
    else:
        assert torch.equal(got, want), (dtype, (got.float() - want.float()).abs().max())
    assert torch.equal(qkv[..., (H + KV) * D:], v_before), "v touched"
    odd = torch.randn(B, T, H, D).to(dtype).transpose(0, 1)        # tokens not evenly strided: the torch path
    f2 = table(torch.randint(0, 64, (T, B)), dtype)
    assert torch.equal(rotate_in_place(odd, f2), apply_rotary(odd, f2))
print("ok")
"""


def test_rotary_kernel_is_apply_rotary_bit_for_bit_in_place():
    pytest.importorskip("triton")
    run_interpreted(_SCRIPT)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_rotary_kernel_on_cuda_is_apply_rotary_bit_for_bit():
    from vlmserve.rotary import RotaryTable, apply_rotary, rotate_in_place
    table = RotaryTable(128, 4096)
    table.build("cuda")
    g = torch.Generator(device="cuda").manual_seed(0)
    qkv = torch.randn(3, 333, 4608, device="cuda", generator=g).bfloat16()
    qk = qkv[..., :34 * 128].view(3, 333, 34, 128)
    f = table(torch.randint(0, 4096, (3, 333), device="cuda", generator=g), torch.bfloat16)
    want = apply_rotary(qk, f)
    assert torch.equal(rotate_in_place(qk, f), want)

