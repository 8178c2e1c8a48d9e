"""The split-K FP8 kernel for decode-sized rows (quant.triton_fp8) against the float32 product of the same e4m3 values:
in Triton's interpreter (float32 products of the e4m3 codes, K split or not, with and without a bias, rows that are a
strided view, and FP8Linear's decode path once the kernel is its choice), and on the GPU with its FP8 tensor-core products against torch._scaled_mm, through FP8Linear as the
decoder calls it (the choice between the two made by timing)."""
from __future__ import annotations

import pytest
import torch

from triton_interpreter import run_interpreted

_SCRIPT = r"""
import torch
from vlmserve.quant.fp8 import quantize_rows_reference, quantize_weight
from vlmserve.quant.triton_fp8 import CONFIGS, Config, launch
torch.manual_seed(0)
N, K = 96, 2048


def close(out, ref, tol):   # float32 sums in another order, the scales applied after them: relative to the output
    return float((out.float() - ref).abs().max() / ref.abs().max()) <= tol


q, s = quantize_weight(torch.randn(N, K))
bias = torch.randn(N)
for m in (1, 5, 16):
    x = quantize_rows_reference(torch.randn(m, K) * 3)
    want = (x.data.float() * x.scale) @ (q.float() * s[:, None]).t()
    for cfg in (Config(64, 128), Config(32, 256, waves=1)):    # K split 4 ways, then not at all
        for b in (None, bias):
            out = torch.empty(m, N)
            launch(x.data, x.scale[:, 0], q, s, b, out, cfg)
            ref = want if b is None else want + b
            assert close(out, ref, 1e-5), (m, cfg, b is None, (out - ref).abs().max())
    out = torch.empty(m, N, dtype=torch.bfloat16)
    launch(x.data, x.scale, q, s, bias, out, CONFIGS[0])
    assert close(out, want + bias, 1e-2)
# rows of a wider buffer (a row stride that is not K)
wide = quantize_rows_reference(torch.randn(4, 2 * K))
rows = wide.data[:, :K]
out = torch.empty(4, N)
launch(rows, wide.scale, q, s, None, out, Config(64, 128))
assert close(out, (rows.float() * wide.scale) @ (q.float() * s[:, None]).t(), 1e-5)
# FP8Linear's decode path as it runs on a GPU once the kernel was chosen for the shape (the timing needs CUDA)
from vlmserve.quant import fp8, triton_fp8
lin = fp8.FP8Linear(q, s, bias.bfloat16(), torch.bfloat16)
fp8.fp8_matmul_supported = lambda device: True
x = quantize_rows_reference(torch.randn(2, 3, K))
triton_fp8._chosen[triton_fp8.choice_key(6, N, K, True, torch.bfloat16)] = Config(64, 128)
y = lin(x)
assert y.shape == (2, 3, N) and y.dtype == torch.bfloat16
assert close(y.view(6, N), (x.data.float() * x.scale) @ (q.float() * s[:, None]).t() + bias.bfloat16().float(), 1e-2)
print("ok")
"""


def test_splitk_kernel_is_the_float32_product_of_the_e4m3_values():
    pytest.importorskip("triton")
    run_interpreted(_SCRIPT)


@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.get_device_capability() < (8, 9),
                    reason="needs a GPU with FP8 matrix units")
@pytest.mark.parametrize("rows", [1, 16, 64, 128])
@pytest.mark.parametrize("n,k,bias", [(4608, 4096, True), (4096, 13696, False), (27392, 4096, False)])
def test_splitk_kernel_on_the_gpu_agrees_with_scaled_mm(rows, n, k, bias):
    from vlmserve.fused import quantize_rows
    from vlmserve.quant import triton_fp8
    from vlmserve.quant.fp8 import FP8Linear, _scaled_mm

    g = torch.Generator(device="cuda").manual_seed(0)
    triton_fp8.TUNING[0] = True                     # as the engine sets it (fp8.prepare_fp8)
    lin = FP8Linear.from_weight(torch.randn(n, k, device="cuda", generator=g) * k ** -0.5,
                                torch.randn(n, device="cuda", generator=g).bfloat16() if bias else None)
    x = quantize_rows(torch.randn(rows, k, device="cuda", generator=g).bfloat16())
    ref = _scaled_mm(x, lin.weight, lin._scale_row, lin.bias, torch.bfloat16)
    for cfg in triton_fp8.CONFIGS:
        out = torch.empty_like(ref)
        triton_fp8.launch(x.data, x.scale, lin.weight, lin.weight_scale, lin.bias, out, cfg)
        assert triton_fp8.agrees(out, ref), cfg
    y = lin(x)                                      # through the timed choice
    assert triton_fp8.agrees(y, ref)
    key = triton_fp8.choice_key(rows, n, k, bias, torch.bfloat16)
    assert key in triton_fp8.chosen() and triton_fp8.choice_timings()[key][0][0] == "cublas"


def test_only_an_engine_with_fp8_layers_on_fp8_hardware_times_the_kernel(monkeypatch):
    """prepare_fp8 (called by the engine) switches the timing on; a one-off command never does, and a model without
    FP8 layers, or FP8 layers without FP8 units (CPU), leaves it off."""
    pytest.importorskip("triton")
    from torch import nn

    from vlmserve.quant import fp8, triton_fp8

    monkeypatch.setattr(triton_fp8, "TUNING", [False])
    plain = nn.Sequential(nn.Linear(32, 32))
    quantized = nn.Sequential(fp8.FP8Linear.from_weight(torch.randn(32, 32)))
    assert not fp8.prepare_fp8(plain) and not fp8.prepare_fp8(quantized) and not triton_fp8.TUNING[0]
    monkeypatch.setattr(fp8, "fp8_matmul_supported", lambda device: True)
    assert not fp8.prepare_fp8(plain) and not triton_fp8.TUNING[0]
    assert fp8.prepare_fp8(quantized) and triton_fp8.TUNING[0]


def test_the_splitk_switch_refuses_unknown_values(monkeypatch):
    pytest.importorskip("triton")
    from vlmserve.quant import triton_fp8

    monkeypatch.setattr(triton_fp8, "TUNING", [True])
    monkeypatch.setenv("VLMSERVE_FP8_SPLITK", "fast")
    with pytest.raises(ValueError, match="VLMSERVE_FP8_SPLITK"):
        triton_fp8.choose(torch.zeros(2, 32, dtype=torch.float8_e4m3fn), torch.ones(2, 1),
                          torch.zeros(16, 32, dtype=torch.float8_e4m3fn), torch.ones(16), None, torch.bfloat16,
                          lambda: None)
