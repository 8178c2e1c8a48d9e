"""fused.linear_gelu (GELU in fc1's GEMM epilogue on CUDA) and the vision MLP that writes its chunks in place."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from vlmserve import fused


def test_linear_gelu_on_cpu_is_the_erf_form_into_out_or_not():
    g = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(7, 24, generator=g), torch.randn(40, 24, generator=g), torch.randn(40, generator=g)
    want = F.gelu(F.linear(x, w, b))
    assert torch.equal(fused.linear_gelu(x, w, b), want)
    out = torch.empty(10, 40)
    got = fused.linear_gelu(x, w, b, out=out[2:9])
    assert got.data_ptr() == out[2:9].data_ptr() and torch.equal(out[2:9], want)
    assert torch.equal(fused.linear_into(x, w, b, out[:7]), F.linear(x, w, b))
    assert torch.equal(fused.linear_into(x, w, None, out[:7]), F.linear(x, w))


def test_the_epilogue_form_is_closer_to_exact_gelu_than_erf_after_bf16_rounding():
    """The numerical case for the CUDA default: tanh GELU on the float32 accumulator (cuBLASLt's epilogue) against
    erf GELU on the product rounded to bf16 (the separate kernel), both against erf GELU in float64, at fc1's
    width with bf16 inputs."""
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(256, 1792, generator=g) * 0.5).bfloat16()
    w = (torch.randn(2048, 1792, generator=g) / 1792 ** 0.5).bfloat16()
    b = (torch.randn(2048, generator=g) * 0.1).bfloat16()
    acc = x.double() @ w.double().t() + b.double()
    exact = F.gelu(acc)
    epilogue = F.gelu(acc.float(), approximate="tanh").bfloat16()
    separate = F.gelu(acc.bfloat16())

    def err(y):
        return float((y.double() - exact).norm() / exact.norm())

    assert err(epilogue) < 0.75 * err(separate)
    assert (F.gelu(acc) - F.gelu(acc, approximate="tanh")).abs().max() < 4.8e-4   # the two forms, everywhere


def test_vision_gelu_choice_is_checked(monkeypatch):
    monkeypatch.setenv("VLMSERVE_VISION_GELU", "fast")
    with pytest.raises(ValueError, match="VLMSERVE_VISION_GELU must be one of epilogue, exact"):
        fused.vision_gelu_choice()


def test_vision_mlp_chunks_are_written_in_place_with_the_whole_input_result(fixture_model):
    mlp = copy.deepcopy(fixture_model.vision.transformer.layers[0].mlp).float()
    x = torch.randn(3, 50, mlp.fc1.in_features, generator=torch.Generator().manual_seed(1))
    whole = mlp(x)
    assert torch.equal(whole, mlp.fc2(F.gelu(mlp.fc1(x))))
    mlp.tokens_per_chunk = 40                          # 150 tokens: 4 chunks of at most 40
    chunks = mlp(x)
    assert chunks.shape == whole.shape
    assert torch.allclose(chunks, whole, atol=1e-6, rtol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_linear_gelu_on_cuda_is_the_tanh_form_of_the_accumulator(monkeypatch, dtype):
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(300, 1792, device="cuda", generator=g).to(dtype)
    w = (torch.randn(4096, 1792, device="cuda", generator=g) / 1792 ** 0.5).to(dtype)
    b = (torch.randn(4096, device="cuda", generator=g) * 0.1).to(dtype)
    acc = x.float() @ w.float().t() + b.float()
    got = fused.linear_gelu(x, w, b).float()
    tanh = F.gelu(acc, approximate="tanh")
    assert ((got - tanh).abs() <= tanh.abs() / 128 + 1e-3).all()
    monkeypatch.setenv("VLMSERVE_VISION_GELU", "exact")
    assert torch.equal(fused.linear_gelu(x, w, b), F.gelu(F.linear(x, w, b)))
