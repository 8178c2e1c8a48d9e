"""FP8 weights with 16-bit activations for decode-sized rows (quant/triton_fp8.py, VLMSERVE_FP8_DECODE=w8a16), in
Triton's interpreter on CPU: the kernel against the dequantized weight in float32 (split-K, K not a multiple of the
block, bias or not), the layer's choice of path by row count, the producers handing decode rows over unquantized, and
the tiny FP8 model closer to float32 than with quantized activations. Its speed is bench/gpu_session.sh fp8_decode's."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")
INFERENCE = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import sys
import torch
from vlmserve.quant import fp8
from vlmserve.quant.fp8 import FP8Linear, FP8Act
from vlmserve.quant.triton_fp8 import w8a16_matmul

g = torch.Generator().manual_seed(0)
for m, n, k, dtype, bias in [(1, 48, 256, torch.float32, True), (5, 208, 320, torch.float32, False),
                             (17, 64, 384, torch.float16, True), (70, 96, 256, torch.float32, True)]:
    lin = FP8Linear.from_weight(torch.randn(n, k, generator=g) * 0.05, torch.randn(n, generator=g) if bias else None,
                                compute_dtype=dtype)
    x = torch.randn(m, 2 * k, generator=g).to(dtype)[:, :k]          # rows further apart than K
    want = x.float() @ (lin.weight.float() * lin.weight_scale[:, None]).t()
    if bias:
        want += lin.bias.float()
    got = w8a16_matmul(x, lin.weight, lin.weight_scale, lin.bias)
    err = ((got.float() - want).abs().max() / want.abs().max()).item()
    assert got.dtype == dtype and err <= (1e-5 if dtype == torch.float32 else 2e-3), (m, n, k, dtype, err)

# the layer: decode rows go to the kernel as they are, more rows are quantized (emulated on CPU)
lin = FP8Linear.from_weight(torch.randn(64, 128, generator=g) * 0.05, None, compute_dtype=torch.float32)
quantized = []
real = fp8.quantize_rows_reference
import vlmserve.fused as fused
fused_quantize = fused.quantize_rows
fused.quantize_rows = lambda x: quantized.append(x.shape) or fused_quantize(x)
assert lin.weight_only(256) and not lin.weight_only(257)
assert fp8.takes_fp8(lin) and not fp8.takes_fp8(lin, 8) and fp8.takes_fp8(lin, 300)
lin(torch.randn(2, 4, 128, generator=g))
assert quantized == []
lin(torch.randn(300, 128, generator=g))
assert quantized == [(300, 128)]
fused.quantize_rows = fused_quantize

# the tiny FP8 model: one decode-sized forward (8 rows) is closer to float32 with 16-bit activations than quantized
from vlmserve.weights import load_model
from vlmserve.attention import DynamicKVCache
ref, _ = load_model(sys.argv[1], "cpu", "float32")
q8, _ = load_model(sys.argv[1], "cpu", "float32", quant="fp8")
ids = torch.randint(0, 300, (1, 8), generator=g)
with torch.inference_mode():
    want = ref.logits(ref.forward_embeds(*ref.embed(ids), ref.new_cache()))
    weight_only = q8.logits(q8.forward_embeds(*q8.embed(ids), q8.new_cache()))
    import os
    os.environ["VLMSERVE_FP8_DECODE"] = "scaled_mm"
    quantized_acts = q8.logits(q8.forward_embeds(*q8.embed(ids), q8.new_cache()))
e16 = ((weight_only - want).norm() / want.norm()).item()
e8 = ((quantized_acts - want).norm() / want.norm()).item()
assert e16 < e8, (e16, e8)
print(f"ok weight-only {e16:.4f} vs quantized activations {e8:.4f}")
"""


def test_weight_only_fp8_for_decode_rows_in_the_interpreter(tiny_dir):
    env = dict(os.environ, TRITON_INTERPRET="1", VLMSERVE_FP8_DECODE="w8a16", PYTHONPATH=str(INFERENCE))
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tiny_dir)], cwd=INFERENCE, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0 and "ok weight-only" in proc.stdout, proc.stderr[-3000:]
