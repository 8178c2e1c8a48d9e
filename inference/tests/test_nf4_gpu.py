"""The NF4 GPU kernels against the fallback (dequantize to the compute dtype + F.linear), on every GLM-4V-9B
layer shape and the row counts the model runs them with, plain and double-quantized absmax.

On CPU (CI) the GPU tests are skipped; where Triton is installed, the tensor-core kernel also runs in Triton's
interpreter on small fp32/fp16 shapes (every variant, split-K included), in a subprocess because
TRITON_INTERPRET is read when Triton is imported. bench/nf4_memory_speed.py (check mode) runs `gpu_cases` on
the GPU machine even where pytest is not installed.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

try:
    import pytest
except ImportError:  # imported by the GPU bench, where pytest may be absent
    pytest = None

# (name, N, K, bias, row counts): decode batches and short prefills go through the fused kernel, the prefix /
# vision / projector prefills (1611, 2048, 6401, 1600 rows) through dequant + cuBLAS or large fused tiles; the
# vision MLP of a whole image multiplies dense_weight() (dequantized once) in chunks of 256 rows or fewer.
DECODE_ROWS = (1, 2, 4, 7, 8, 16, 24, 32, 48, 64, 96, 128, 192, 200, 256)  # the engine's batch buckets and odd sizes
PREFILL_ROWS = (576, 1611)  # the engine's batched text suffixes (64 rows x 9 tokens), one image prefix
LAYERS = (
    ("lm.qkv", 4608, 4096, True, DECODE_ROWS + PREFILL_ROWS),
    ("lm.dense", 4096, 4096, False, DECODE_ROWS + PREFILL_ROWS),
    ("lm.h_to_4h", 27392, 4096, False, DECODE_ROWS + PREFILL_ROWS),
    ("lm.4h_to_h", 4096, 13696, False, DECODE_ROWS + PREFILL_ROWS),
    ("output_layer", 151552, 4096, False, (1, 5, 64, 256)),
    ("vit.qkv", 5376, 1792, True, (6401,)),
    ("vit.dense", 1792, 1792, True, (6401,)),
    ("vit.fc1", 15360, 1792, True, (2048,)),
    ("vit.fc2", 1792, 15360, True, (2048,)),
    ("proj.h_to_4h", 13696, 4096, False, (1600,)),
)


def tolerance_ok(err: float, fallback_err: float, dtype: torch.dtype) -> bool:
    # The kernels dequantize exactly as the fallback and accumulate in float32 like cuBLAS, in another order:
    # within 2x the fallback's own error plus a floor.
    return err <= 2 * fallback_err + (1e-5 if dtype == torch.float32 else 2e-3)


def compare(lin, x: torch.Tensor, config=None) -> tuple[float, float]:
    """(kernel error, fallback error), both relative to the float32 product of the same dequantized weight."""
    from vlmserve.quant import triton_nf4 as T

    dtype = x.dtype
    wq = lin.dequantize(dtype)
    b = lin.bias
    ref = F.linear(x.float(), wq.float(), None if b is None else b.float())
    scale = ref.abs().max().clamp_min(1e-12)
    fb_err = ((F.linear(x, wq, b).float() - ref).abs().max() / scale).item()
    del wq
    out = lin(x) if config is None else T.nf4_matmul(x, lin._operand(), b, config=config)
    assert out.shape == ref.shape and out.dtype == dtype
    return ((out.float() - ref).abs().max() / scale).item(), fb_err


def gpu_cases(layers=LAYERS, double_quants=(True, False), log=None, every_candidate: bool = True) -> list[dict]:
    """The tuned NF4Linear forward on every layer shape x row count, plain and double-quantized absmax
    (the double-quantized form is what bf16 serving uses), and every tensor-core candidate once."""
    from vlmserve.quant import triton_nf4 as T
    from vlmserve.quant.linear import NF4Linear

    g = torch.Generator(device="cuda").manual_seed(0)
    rows = []
    for name, n, k, has_bias, ms in layers:
        w = torch.randn(n, k, device="cuda", generator=g) * 0.02
        b = (torch.randn(n, device="cuda", generator=g) * 0.1).to(torch.bfloat16) if has_bias else None
        for dq in double_quants:
            lin = NF4Linear.from_weight(w, b, compute_dtype=torch.bfloat16, double_quant=dq)
            if name.startswith("vit.fc"):
                dense, ref = lin.dense_weight(), lin.dequantize(torch.bfloat16)
                err = ((dense.float() - ref.float()).abs().max() / ref.float().abs().max()).item()
                rows.append(dict(layer=name + ".dense_weight", N=n, K=k, double_quant=dq, rel_err=err,
                                 ok=dense.dtype == torch.bfloat16 and err <= 8e-3))  # 2 bf16 steps at the max
                del dense, ref
            for m in ms:
                x = torch.randn(m, k, device="cuda", generator=g).to(torch.bfloat16)
                err, fb = compare(lin, x)
                cfg = T.tuned_configs().get(T.tuning_key(m, lin._operand(), torch.bfloat16, has_bias))
                rows.append(dict(layer=name, M=m, N=n, K=k, double_quant=dq, config=str(cfg), rel_err=err,
                                 fallback_rel_err=fb, ok=tolerance_ok(err, fb, torch.bfloat16)))
                if log and not rows[-1]["ok"]:
                    log(f"WRONG {rows[-1]}")
            del lin
        del w
        torch.cuda.empty_cache()
    # every tensor-core candidate (the tuner keeps only one per shape) on one shape per bucket, both absmax forms
    # and the three compute dtypes
    seen = set()
    for bucket, cfgs in T.TC_CONFIGS.items() if every_candidate else ():
        for cfg in cfgs + T.LARGE_M_CONFIGS:
            for dq, dtype in ((True, torch.bfloat16), (False, torch.bfloat16), (True, torch.float16),
                              (False, torch.float32)):
                key = (bucket, cfg, dq, dtype)
                if key in seen or (cfg.dequant and dtype != torch.bfloat16):
                    continue
                seen.add(key)
                m = max(2, bucket - 3)
                w = torch.randn(1000, 4096, device="cuda", generator=g) * 0.02
                b = (torch.randn(1000, device="cuda", generator=g) * 0.1).to(dtype)
                lin = NF4Linear.from_weight(w, b, compute_dtype=dtype, double_quant=dq)
                x = torch.randn(m, 4096, device="cuda", generator=g).to(dtype)
                try:
                    err, fb = compare(lin, x, config=cfg)
                except Exception as exc:  # a config that cannot compile on this GPU is reported, not fatal
                    rows.append(dict(layer="candidate", M=m, config=str(cfg), ok=None, error=str(exc)[:200]))
                    continue
                rows.append(dict(layer="candidate", M=m, N=1000, K=4096, double_quant=dq, dtype=str(dtype)[6:],
                                 config=str(cfg), rel_err=err, fallback_rel_err=fb, ok=tolerance_ok(err, fb, dtype)))
                if log and not rows[-1]["ok"]:
                    log(f"WRONG {rows[-1]}")
    return rows


if pytest is not None:
    gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

    @gpu
    @pytest.mark.parametrize("layout", ["bnb", "kernel"])
    @pytest.mark.parametrize("layer", LAYERS, ids=[layer[0] for layer in LAYERS])
    def test_tuned_kernels_match_fallback_on_every_shape(layer, layout, monkeypatch):
        """On bitsandbytes' layout (the Triton kernels) and on the kernel layout (the Gluon ring kernel)."""
        pytest.importorskip("triton")
        monkeypatch.setenv("VLMSERVE_NF4_LAYOUT", layout)
        bad = [r for r in gpu_cases((layer,)) if r["layer"] != "candidate" and not r["ok"]]
        assert not bad, bad

    @gpu
    def test_every_candidate_matches_fallback():
        pytest.importorskip("triton")
        rows = gpu_cases(layers=())
        bad = [r for r in rows if r["ok"] is False]
        assert not bad, bad
        assert any(r["ok"] for r in rows)

    @gpu
    def test_every_ring_candidate_matches_fallback(monkeypatch):
        """The Gluon ring kernel (weights in the kernel layout) in every tuner candidate, at the row counts each row
        tile serves (one row, a partial tile, full tiles, several 64-row tiles, 256), plain and double-quantized absmax,
        with a bias (stored by the kernel when K is not split, by the reduce when it is), and fp16 on one candidate
        per tile."""
        monkeypatch.setenv("VLMSERVE_NF4_LAYOUT", "kernel")
        T = pytest.importorskip("vlmserve.quant.triton_nf4")
        from vlmserve.quant.linear import NF4Linear

        g = torch.Generator(device="cuda").manual_seed(9)
        checked = 0
        for dq in (True, False):
            for dtype in (torch.bfloat16, torch.float16):
                w = torch.randn(1024, 4096, device="cuda", generator=g) * 0.02
                lin = NF4Linear.from_weight(w, torch.randn(1024, device="cuda", generator=g).to(dtype), dtype,
                                            double_quant=dq)
                assert lin._operand().kernel_layout
                for bm, rows in ((16, (1, 7, 16)), (64, (17, 64, 130, 256))):
                    ring = [c for c in T.RING_CONFIGS[bm] if c.ring]
                    for cfg in ring if dtype == torch.bfloat16 else ring[:1]:
                        for m in rows:
                            x = torch.randn(m, 4096, device="cuda", generator=g).to(dtype)
                            err, fb = compare(lin, x, config=cfg)
                            assert tolerance_ok(err, fb, dtype), (dq, dtype, m, cfg, err, fb)
                            checked += 1
        assert checked > 50

    @gpu
    def test_ring_kernel_stores_without_split_and_leaves_partials_with_one(monkeypatch):
        """One K split (the kernel stores bf16 and the bias itself) and several (float32 partials, summed by the reduce
        or left to the consumer: quant.partials) give the same values as the fallback."""
        monkeypatch.setenv("VLMSERVE_NF4_LAYOUT", "kernel")
        T = pytest.importorskip("vlmserve.quant.triton_nf4")
        from vlmserve.quant.linear import NF4Linear
        from vlmserve.quant.partials import Partials

        g = torch.Generator(device="cuda").manual_seed(4)
        lin = NF4Linear.from_weight(torch.randn(151552 // 4, 4096, device="cuda", generator=g) * 0.02,
                                    torch.randn(151552 // 4, device="cuda", generator=g).to(torch.bfloat16),
                                    torch.bfloat16)
        x = torch.randn(64, 4096, device="cuda", generator=g).to(torch.bfloat16)
        one = T._ring(64, 128, 4, 1, True)        # 296 tiles fill the GPU: no split
        p = T._gluon().plan(64, lin.out_features, 4096, 128, 4, 1, T.num_sms(x.device))
        assert p.split == 1
        err, fb = compare(lin, x, config=one)
        assert tolerance_ok(err, fb, torch.bfloat16)
        small = NF4Linear.from_weight(torch.randn(1024, 4096, device="cuda", generator=g) * 0.02, None, torch.bfloat16)
        cfg = T._ring(16, 64, 4, 4)
        x16 = torch.randn(16, 4096, device="cuda", generator=g).to(torch.bfloat16)
        summed = T.nf4_matmul(x16, small._operand(), None, config=cfg)
        left = T.nf4_matmul(x16, small._operand(), None, config=cfg, leave_splits=True)
        assert isinstance(left, Partials) and left.parts.shape[0] > 1
        assert torch.equal(left.parts.sum(0).to(torch.bfloat16), summed)

    @gpu
    def test_kernel_layout_dequantizer_matches_on_the_gpu(monkeypatch):
        """dense_weight() and the prefill's chunks from the kernel layout: bitsandbytes' values. Exactly with float32
        absmax (one multiply); with the 8-bit absmax within two bf16 steps at the largest value, as the Triton
        dequantizer of bitsandbytes' layout: the GPU contracts code2[q] * nested + offset into one FMA, which torch
        rounds twice (an H100 in session 12 found them unequal; Triton's interpreter, which does not contract, finds
        them equal: test_nf4_layout)."""
        monkeypatch.setenv("VLMSERVE_NF4_LAYOUT", "kernel")
        from vlmserve.quant.linear import NF4Linear

        g = torch.Generator(device="cuda").manual_seed(2)
        for dq in (True, False):
            lin = NF4Linear.from_weight(torch.randn(15360, 1792, device="cuda", generator=g) * 0.02, None,
                                        torch.bfloat16, double_quant=dq)
            ref = lin.dequantize(torch.bfloat16)
            assert lin._operand().kernel_layout
            dense = lin.dense_weight()
            if dq:
                err = ((dense.float() - ref.float()).abs().max() / ref.float().abs().max()).item()
                assert err <= 8e-3, err
            else:
                assert torch.equal(dense, ref)

    @gpu
    @pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
    def test_register_table_decoding_matches_fallback(dtype, monkeypatch):
        """The dot kernel's LUT=3 (inline PTX from vlmserve.quant.nf4_prmt, which CPU tests check only through its
        Python interpreter): both operand orders, split-K, plain and double-quantized absmax, the block scale on
        the result and on the weights. The weight stays in bitsandbytes' layout (what the dot kernel reads)."""
        T = pytest.importorskip("vlmserve.quant.triton_nf4")
        monkeypatch.setenv("VLMSERVE_NF4_LAYOUT", "bnb")
        from vlmserve.quant.linear import NF4Linear

        g = torch.Generator(device="cuda").manual_seed(5)
        for dq in (True, False):
            lin = NF4Linear.from_weight(torch.randn(4608, 4096, device="cuda", generator=g) * 0.02,
                                        torch.randn(4608, device="cuda", generator=g).to(dtype), dtype, double_quant=dq)
            for m, cfg in ((16, T._dot(16, 64, 4, 3, 2, 3, waves=4, x_split=True)),
                           (16, T._dot(16, 64, 4, 3, 2, 3, waves=8, x_split=True, w_is_a=False)),
                           (64, T._dot(64, 64, 4, 3, 1, 3, waves=4, x_split=True)),
                           (5, T._dot(16, 128, 4, 2, 2, 3, waves=4)),
                           (16, T._dot(16, 128, 4, 3, 1, 3, waves=4, x_split=True, scale_w=True)),
                           (64, T._dot(64, 64, 4, 3, 2, 3, waves=8, x_split=True, w_is_a=False, scale_w=True)),
                           (5, T._dot(16, 64, 4, 2, 2, 3, waves=8, x_split=True, w_is_a=False)),
                           (64, T._dot(64, 128, 4, 3, 1, 3, waves=4, x_split=True, scale_w=True)),
                           (1, T._dot(16, 128, 4, 3, 2, 3, waves=4, x_split=True, w_is_a=False, scale_w=True)),
                           (64, T._dot(64, 128, 4, 2, 2, 3, waves=4, x_split=True, scale_w=True, maxnreg=168)),
                           (16, T._dot(16, 128, 4, 3, 2, 3, waves=4, x_split=True, w_is_a=False, maxnreg=120)),
                           (40, T._dot(64, 64, 4, 3, 2, 3, waves=2, x_split=True, maxnreg=128))):
                x = torch.randn(m, 4096, device="cuda", generator=g).to(dtype)
                err, fb = compare(lin, x, config=cfg)
                assert tolerance_ok(err, fb, dtype), (dq, m, cfg, err, fb)

    @gpu
    def test_a_choice_tuned_by_one_start_is_taken_from_disk_by_the_next(tmp_path, monkeypatch):
        """The second start (the in-memory table cleared) takes the stored choice for a case without timing anything."""
        T = pytest.importorskip("vlmserve.quant.triton_nf4")
        from vlmserve.quant.linear import NF4Linear

        monkeypatch.setenv("VLMSERVE_TUNING_CACHE", str(tmp_path / "nf4-tuning.json"))
        monkeypatch.setattr(T, "_disk", None)
        monkeypatch.setattr(T, "_tuned", {})
        monkeypatch.setattr(T, "_timings", {})
        lin = NF4Linear.from_weight(torch.randn(512, 1024, device="cuda") * 0.02, None, compute_dtype=torch.bfloat16)
        x = torch.randn(16, 1024, device="cuda").to(torch.bfloat16)
        first = lin(x)
        key = T.tuning_key(16, lin._operand(), torch.bfloat16, False)
        chosen = T.tuned_configs()[key]
        assert T.tuning_timings()[key]                        # timed
        monkeypatch.setattr(T, "_disk", None)
        monkeypatch.setattr(T, "_tuned", {})
        monkeypatch.setattr(T, "_timings", {})
        assert torch.equal(lin(x), first)
        assert T.tuned_configs()[key] == chosen and key not in T.tuning_timings()   # taken, not timed

    _INTERPRETED = r"""
import torch
from vlmserve.quant import triton_nf4 as T
from vlmserve.quant.linear import NF4Linear
from tests.test_nf4_gpu import compare, tolerance_ok
g = torch.Generator().manual_seed(0)
cfgs = [T._tc(16, 16, 4, 1, 1), T._tc(16, 32, 4, 1, 2, waves=64), T._dq(1), T._tc(32, 16, 4, 1, 1, w_is_a=False),
        T._tc(16, 16, 4, 1, 4, waves=64), T._tc(16, 32, 4, 1, 4, w_is_a=False, waves=64),
        T._dot(16, 16, 4, 1, 2, lut=0), T._dot(32, 16, 4, 1, 1, lut=0, w_is_a=False),
        T._dot(16, 32, 4, 1, 4, lut=0, waves=64), T._dot(16, 32, 4, 1, 3, lut=1, waves=64),
        T._dot(16, 32, 4, 1, 2, lut=0, x_split=True, scale_w=True, maxnreg=128),
        T._dot(32, 16, 4, 1, 3, lut=0, w_is_a=False, waves=64, scale_w=True),
        T._dot(32, 16, 4, 1, 2, lut=0, w_is_a=False, waves=64), T._dot(16, 16, 4, 1, 1, lut=1, waves=64),
        T._dot(16, 32, 4, 1, 2, lut=1, x_split=True), T._dot(32, 16, 4, 1, 1, lut=0, w_is_a=False, x_split=True),
        T._tc(16, 32, 4, 1, 2, waves=64, x_split=True), T._tc(32, 16, 4, 1, 4, w_is_a=False, x_split=True)]
n_split = n_even = n_dot = 0
for m, n, k, dtype, bias, dq in [(3, 40, 1024, torch.float32, True, True), (17, 48, 320, torch.float32, False, False),
                                 (20, 32, 512, torch.float16, True, False), (4, 64, 256, torch.float16, False, True)]:
    lin = NF4Linear.from_weight(torch.randn(n, k, generator=g) * 0.05,
                                (torch.randn(n, generator=g) * 0.1) if bias else None, dtype, double_quant=dq)
    x = torch.randn(m, k, generator=g).to(dtype)
    if m == 17:  # rows further apart than K (as the last positions of a prefill are)
        x = torch.randn(m, 2 * k, generator=g).to(dtype)[:, :k]
    for cfg in cfgs:
        if cfg.lut == 1 and dtype == torch.float32:  # the byte-pair table holds 16-bit codes
            continue
        n_split += not cfg.dequant and T._split_k(-(-m // cfg.block_m) * -(-n // cfg.block_n), -(-k // 64 // cfg.r), 132, 4, cfg.waves) > 1
        if cfg.lut is not None:    # the dot kernel's unmasked (EVEN) path and its masked one
            n_dot += 1
            n_even += n % cfg.block_n == 0 and k // 64 % cfg.r == 0
        err, fb = compare(lin, x, config=cfg)
        assert tolerance_ok(err, fb, dtype), (m, n, k, dtype, cfg, err, fb)
assert n_split >= 2, n_split
assert 2 <= n_even <= n_dot - 2, (n_even, n_dot)
print("ok")
"""

    def test_tensor_core_kernel_in_triton_interpreter():
        """Every variant of the fused kernels (operand order, decodings, x read as it is, blocks per step not dividing K,
        split-K, block scale on the weights, a register cap, tiles dividing N and K evenly or not, plain and 8-bit absmax) against
        the fallback, on CPU. bf16 is left to the GPU test: Triton's interpreter has no bf16 dot."""
        pytest.importorskip("triton")
        from triton_interpreter import run_interpreted
        run_interpreted(_INTERPRETED)

    def test_tuner_guard_rejects_outputs_that_differ_from_the_reference():
        """The tuner keeps a fused candidate only if it agrees with dequant + cuBLAS: summation-order noise passes,
        a wrong kernel does not."""
        T = pytest.importorskip("vlmserve.quant.triton_nf4")
        g = torch.Generator().manual_seed(3)
        ref = torch.randn(16, 300, generator=g).to(torch.bfloat16)
        assert T.agrees(ref, ref)
        assert T.agrees((ref.float() * (1 + 1e-3)).to(torch.bfloat16), ref)
        wrong = ref.clone()
        wrong[3, 7] += ref.float().abs().max().item() * 0.1
        assert not T.agrees(wrong, ref)
        assert not T.agrees(torch.full_like(ref, float("nan")), ref)
        ref32 = ref.float()
        assert T.agrees(ref32 + 1e-6 * ref32.abs().max(), ref32)
        assert not T.agrees(ref32 * 1.01, ref32)
