"""The large-M NF4 path's torch side: row-range dequantization, chunked matmul into output slices,
and the activation-memory changes it comes with (vision MLP in token chunks, contiguous KV)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vlmserve.quant import chunked
from vlmserve.quant.nf4 import quantize_nf4


@pytest.mark.parametrize("double_quant", [False, True])
def test_dequantize_rows_equals_slices_of_the_full_weight(double_quant):
    g = torch.Generator().manual_seed(1)
    w = torch.randn(37, 320, generator=g)  # 5 blocks per row; 185 blocks: the nested 256-blocks cut rows
    q = quantize_nf4(w, double_quant=double_quant)
    full = q.dequantize(torch.float32)
    for r0, r1 in [(0, 37), (0, 1), (3, 20), (36, 37), (11, 12)]:
        out = torch.empty(r1 - r0, 320)
        q.dequantize_rows(r0, r1, out)
        assert torch.equal(out, full[r0:r1])
    with pytest.raises(ValueError, match="cannot be cut"):
        quantize_nf4(torch.randn(4, 96)).dequantize_rows(0, 2, torch.empty(2, 96))  # rows split blocks


def test_rows_per_chunk_aligns_and_caps():
    assert chunked.rows_per_chunk(100, 64, 2, 1 << 20) == 100                 # all of it fits
    assert chunked.SCRATCH_BYTES == 256 << 20
    assert chunked.rows_per_chunk(151552, 4096, 2, 8 << 20) == 1024
    assert chunked.rows_per_chunk(4096, 13696, 2, 8 << 20) == 256             # 306 rounded down to 64s
    assert chunked.rows_per_chunk(4096, 13696, 2, 1 << 40, 8 << 20) == 256    # never beyond the scratch
    assert chunked.rows_per_chunk(10, 100, 4, 1000) == 2                      # < 64 rows: no rounding
    with pytest.raises(ValueError, match="does not fit"):
        chunked.rows_per_chunk(10, 1000, 4, 1000)
    assert chunked.rows_per_chunk(27392, 4096, 2, 1 << 40, 256 << 20) == 27392  # a 256 MiB scratch: one chunk


@pytest.mark.parametrize("raw,mib", [(None, 256), ("", 256), ("8", 8), (" 16 ", 16)])
def test_scratch_size_from_the_environment(monkeypatch, raw, mib):
    if raw is None:
        monkeypatch.delenv("VLMSERVE_NF4_SCRATCH_MIB", raising=False)
    else:
        monkeypatch.setenv("VLMSERVE_NF4_SCRATCH_MIB", raw)
    assert chunked.scratch_bytes() == mib << 20


@pytest.mark.parametrize("raw", ["abc", "0", "-5", "4097", "1e9", "99999999999999999999"])
def test_scratch_size_rejects_bad_values(monkeypatch, raw):
    monkeypatch.setenv("VLMSERVE_NF4_SCRATCH_MIB", raw)
    with pytest.raises(ValueError, match="VLMSERVE_NF4_SCRATCH_MIB"):
        chunked.scratch_bytes()


@pytest.mark.parametrize("m,n,k,bias,rows", [(5, 200, 128, True, 64), (1, 130, 64, False, 7),
                                             (33, 64, 192, True, 64), (4, 301, 128, False, 1000)])
def test_chunked_linear_matches_full_dequantize(m, n, k, bias, rows):
    g = torch.Generator().manual_seed(m + n)
    q = quantize_nf4(torch.randn(n, k, generator=g), double_quant=True)
    x = torch.randn(m, k, generator=g)
    b = torch.randn(n, generator=g) if bias else None
    calls = []

    def rows_fn(r0, r1, dst):
        calls.append((r0, r1))
        q.dequantize_rows(r0, r1, dst)

    out = torch.full((m, n), float("nan"))
    chunked.chunked_linear(x, n, b, rows_fn, rows * k * 4, out)
    ref = F.linear(x, q.dequantize(torch.float32), b)
    assert torch.allclose(out, ref, atol=1e-5, rtol=1e-5)
    step = min(rows, n)
    assert calls == [(r, min(n, r + step)) for r in range(0, n, step)]  # every row once, in order
    # the scratch is one buffer, never larger than SCRATCH_BYTES, shared by every call on the device
    assert chunked.scratch(torch.device("cpu")) is chunked.scratch(torch.device("cpu"))
    assert chunked.scratch(torch.device("cpu")).numel() == chunked.SCRATCH_BYTES


def test_chunked_linear_checks_out():
    q = quantize_nf4(torch.randn(8, 64))
    with pytest.raises(ValueError, match="row-major"):
        chunked.chunked_linear(torch.randn(2, 64), 8, None, q.dequantize_rows, 1 << 20, torch.empty(8, 2).t())


def test_vision_mlp_in_token_chunks_equals_one_pass(fixture_model):
    mlp = fixture_model.vision.transformer.layers[0].mlp
    x = torch.randn(2, 37, mlp.fc1.in_features, generator=torch.Generator().manual_seed(0))
    whole = mlp(x)
    mlp.tokens_per_chunk = 10  # 74 tokens -> 8 chunks of 10 (the last 4)
    try:
        chunks = mlp(x)
    finally:
        del mlp.tokens_per_chunk
    assert chunks.shape == whole.shape
    assert torch.allclose(chunks, whole, atol=1e-6, rtol=1e-5)


def test_dynamic_cache_keeps_its_own_kv_not_views_of_qkv(fixture_model, fixture_inputs):
    ids = fixture_inputs["input_ids"][:1]
    pixels = fixture_inputs.get("pixel_values")
    with torch.inference_mode():
        _, _, cache = fixture_model.prefill(ids, None if pixels is None else pixels[:1])
    for t in cache.k + cache.v:
        assert t.is_contiguous()
        assert t.untyped_storage().nbytes() == t.numel() * t.element_size()  # not a slice of qkv


def test_nf4_vision_mlp_dequantizes_each_weight_once_for_all_chunks(fixture_model, monkeypatch):
    """4-bit fc1 / fc2 over many token chunks: one dequantization per weight per call (not one per chunk), the
    same result as one pass, and the 16-bit path's chunks."""
    import copy

    from vlmserve.quant.linear import NF4Linear
    from vlmserve import vision

    mlp = copy.deepcopy(fixture_model.vision.transformer.layers[0].mlp)
    mlp.fc1 = NF4Linear.from_weight(mlp.fc1.weight, mlp.fc1.bias, torch.float32)
    mlp.fc2 = NF4Linear.from_weight(mlp.fc2.weight, mlp.fc2.bias, torch.float32)
    x = torch.randn(3, 50, mlp.fc1.in_features, generator=torch.Generator().manual_seed(0))
    whole = mlp(x)
    made = []
    real = NF4Linear.dequantize
    monkeypatch.setattr(NF4Linear, "dequantize", lambda self, dtype=None: made.append(self) or real(self, dtype))
    seen_rows = []
    dense_mlp = vision.MLP._dense_mlp

    def spy(self):
        fn = dense_mlp(self)
        return lambda h, out: seen_rows.append(h.shape[0]) or fn(h, out)

    monkeypatch.setattr(vision.MLP, "_dense_mlp", spy)
    mlp.nf4_tokens_per_chunk = 40  # 150 tokens: chunks of at most 40 that start on 16-row boundaries
    chunks = mlp(x)
    assert made == [mlp.fc1, mlp.fc2]
    assert seen_rows == [32, 32, 32, 32, 22]
    assert torch.allclose(chunks, whole, atol=1e-6, rtol=1e-5)


def test_prepare_nf4_allocates_only_for_nf4_layers_on_cuda():
    """The engine holds the scratch before its memory plan measures the card; a CPU model or one without NF4 layers
    gets none (nothing is allocated)."""
    from torch import nn

    from vlmserve.quant.linear import NF4Linear, prepare_nf4

    assert prepare_nf4(nn.Sequential(nn.Linear(64, 8))) == 0
    assert prepare_nf4(nn.Sequential(NF4Linear.from_weight(torch.randn(8, 64), None, torch.float32))) == 0
    if torch.cuda.is_available():
        lin = NF4Linear.from_weight(torch.randn(8, 64, device="cuda"), None, torch.bfloat16)
        assert prepare_nf4(nn.Sequential(lin)) == chunked.scratch_bytes()
        assert chunked.scratch(torch.device("cuda")).numel() == chunked.scratch_bytes()
