"""FP8 on the GPU: the fused Triton producers against their float32 reference, and each GLM-4V-9B linear
layer timed as it runs in the model — the producing op plus the GEMM — in bf16 and in FP8, at the vision
tower's, the prefill's and the decode step's sizes. Decides which layers gain (bench/results/fp8_check.json).

    PYTHONPATH=inference:bench python bench/fp8_check.py

Layer rows: the model's producer in eager PyTorch (before the fused kernels), the fused kernel ending in
bf16, and the fused kernel ending in e4m3 followed by the FP8 GEMM.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from vlmserve import fused
from vlmserve import triton_fused as T
from vlmserve.quant import fp8
from vlmserve.quant.fp8 import FP8Linear
from vlmserve.gpu_timing import event_time_us, graph_time_us


def timed_us(fn, rows: int) -> float:
    # small launches: a CUDA graph hides the host; large ones: events (a graph of many would hold their outputs)
    return graph_time_us(fn, reps=20) if rows <= 4096 else event_time_us(fn)


def check_kernels() -> list[dict]:
    """Every kernel against the plain-torch definition (computed on the CPU in float32), fresh random inputs."""
    out = []
    torch.manual_seed(0)
    for K in (1792, 13696):
        M = 333
        x, y = (torch.randn(M, K, device="cuda", dtype=torch.bfloat16) for _ in range(2))
        w, b = torch.randn(K, device="cuda", dtype=torch.bfloat16), torch.randn(K, device="cuda", dtype=torch.bfloat16)
        xc, yc, wc, bc = (t.cpu().float() for t in (x, y, w, b))
        quant = {
            "quantize_rows": (T.quantize_rows(x), fp8.quantize_rows_reference(xc)),
            "rms_norm": (T.rms_norm(x, w, 1e-5, True), fused.rms_norm(xc, wc, 1e-5, True)),
            "gelu": (T.gelu(x, True), fused.gelu(xc, True)),
            "swiglu": (T.swiglu(x, y, True), fused.swiglu(xc, yc, True)),
            # the residual sum is rounded to bf16 before its quantization (it is the bf16 residual stream):
            # the reference rounds it too
            "add_layer_norm": (T.add_layer_norm(x, y, w, b, 1e-6, True)[1],
                               fused.add_layer_norm(x.cpu(), y.cpu(), w.cpu(), b.cpu(), 1e-6, True)[1]),
            "add_rms_norm": (T.add_rms_norm(x, y, w, 1e-5, True)[1],
                             fused.rms_norm((x.cpu() + y.cpu()).float(), wc, 1e-5, True)),
        }
        for name, (got, want) in quant.items():
            gd, wd = got.dequantize().cpu(), want.dequantize()
            out.append({"kernel": name + " (e4m3)", "K": K,
                        "codes_equal": float((got.data.cpu().float() == want.data.float()).float().mean()),
                        "scale_rel_err": float(((got.scale.cpu() - want.scale).abs() / want.scale).max()),
                        "dequant_rel_err": float((gd - wd).norm() / wd.norm()), "nan": bool(torch.isnan(gd).any())})
        plain = {
            "rms_norm": (T.rms_norm(x, w, 1e-5), fused.rms_norm(xc, wc, 1e-5)),
            "swiglu": (T.swiglu(x, y), fused.swiglu(xc, yc)),
            "add_layer_norm": (T.add_layer_norm(x, y, w, b, 1e-6), fused.add_layer_norm(xc, yc, wc, bc, 1e-6)),
            "add_rms_norm sum": (T.add_rms_norm(x, y, w, 1e-5)[0], xc + yc),
            "add_rms_norm norm": (T.add_rms_norm(x, y, w, 1e-5)[1], fused.rms_norm((x + y).cpu().float(), wc, 1e-5)),
        }
        for name, (got, want) in plain.items():
            g = got.cpu().float()
            out.append({"kernel": name + " (bf16)", "K": K, "rel_err": float((g - want).norm() / want.norm()),
                        "nan": bool(torch.isnan(g).any())})
    for M in (1, 64, 333):     # the GEMM with a bias (qkv and the vision MLP have one), decode-sized rows too
        w = torch.randn(5376, 1792, device="cuda", dtype=torch.bfloat16) / 1792 ** 0.5
        bias = torch.randn(5376, device="cuda", dtype=torch.bfloat16)
        x = torch.randn(M, 1792, device="cuda", dtype=torch.bfloat16)
        ref = F.linear(x.float(), w.float(), bias.float())
        got = FP8Linear.from_weight(w, bias, torch.bfloat16)(x).float()
        out.append({"kernel": "FP8Linear with bias", "K": 1792, "M": M, "rel_err": float((got - ref).norm() / ref.norm()),
                    "nan": bool(torch.isnan(got).any()), "bias_in_gemm": fp8._BIAS_IN_GEMM[0]})
    bad = [r for r in out if r["nan"] or r.get("codes_equal", 1) < 0.99 or r.get("scale_rel_err", 0) > 1e-3
           or r.get("rel_err", 0) > (0.06 if "FP8Linear" in r["kernel"] else 1e-2)]
    for r in out:
        print("kernel", r, flush=True)
    print(f"kernels: {len(bad)} failing", flush=True)
    return out


# (name, K, N, producer) — the producer is what makes the layer's input in the model
LAYERS = {
    "vision": [("qkv", 1792, 5376, "add_ln"), ("dense", 1792, 1792, "none"), ("fc1", 1792, 15360, "add_ln"),
               ("fc2", 15360, 1792, "gelu")],
    "decoder": [("qkv", 4096, 4608, "rms"), ("dense", 4096, 4096, "none"), ("h_to_4h", 4096, 27392, "add_rms"),
                ("4h_to_h", 13696, 4096, "swiglu")],
}
ROWS = {"vision": [6401 * 4], "decoder": [1611 * 8, 64, 16, 1]}


def layer_times() -> list[dict]:
    rows = []
    for part, layers in LAYERS.items():
        for M in ROWS[part]:
            for name, K, N, producer in layers:
                torch.manual_seed(1)
                w = torch.randn(N, K, device="cuda", dtype=torch.bfloat16) / K ** 0.5
                lin = FP8Linear.from_weight(w, None, torch.bfloat16)
                kin = 2 * K if producer == "swiglu" else K
                x, y = (torch.randn(M, kin, device="cuda", dtype=torch.bfloat16) for _ in range(2))
                g = torch.randn(K, device="cuda", dtype=torch.bfloat16)
                bias = torch.randn(K, device="cuda", dtype=torch.bfloat16)

                def eager_path():     # the model before the fused kernels
                    if producer == "add_ln":
                        h = x + F.layer_norm(y, (K,), g, bias, 1e-6)
                    elif producer == "rms":
                        h = (g * (x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-5))).to(x.dtype)
                    elif producer == "add_rms":
                        s = x + y
                        h = (g * (s * torch.rsqrt(s.float().pow(2).mean(-1, keepdim=True) + 1e-5))).to(x.dtype)
                    elif producer == "gelu":
                        h = F.gelu(x)
                    elif producer == "swiglu":
                        a, b = x.chunk(2, -1)
                        h = F.silu(a) * b
                    else:
                        h = x
                    return F.linear(h, w)

                def producer_out(quantize):
                    if producer == "add_ln":
                        h = fused.add_layer_norm(x, y, g, bias, 1e-6, quantize)
                        return h[1] if quantize else h
                    if producer == "rms":
                        return fused.rms_norm(x, g, 1e-5, quantize)
                    if producer == "add_rms":
                        return fused.add_rms_norm(x, y, g, 1e-5, quantize)[1]
                    if producer == "gelu":
                        return fused.gelu(x, quantize)
                    if producer == "swiglu":
                        a, b = x.chunk(2, -1)
                        return fused.swiglu(a, b, quantize)
                    return fused.quantize_rows(x) if quantize else x

                def bf16_path():
                    return F.linear(producer_out(False), w)

                def fp8_path():
                    return lin(producer_out(True))

                xq = fused.quantize_rows(x[:, :K].contiguous())
                gemm_bf16 = timed_us(lambda: F.linear(x[:, :K], w), M)
                gemm_fp8 = timed_us(lambda: lin(xq), M)
                t_eager, t_bf16, t_fp8 = timed_us(eager_path, M), timed_us(bf16_path, M), timed_us(fp8_path, M)
                ref = eager_path().float()
                err = float((fp8_path().float() - ref).norm() / ref.norm())
                err_fused = float((bf16_path().float() - ref).norm() / ref.norm())
                flops = 2 * M * K * N
                r = {"part": part, "layer": name, "M": M, "K": K, "N": N, "producer": producer,
                     "gemm_bf16_us": gemm_bf16, "gemm_fp8_us": gemm_fp8,
                     "layer_eager_bf16_us": t_eager, "layer_bf16_us": t_bf16, "layer_fp8_us": t_fp8,
                     "speedup": t_bf16 / t_fp8, "fused_bf16_rel_err": err_fused,
                     "gemm_bf16_tflops": flops / gemm_bf16 / 1e6, "gemm_fp8_tflops": flops / gemm_fp8 / 1e6,
                     "rel_err_vs_bf16": err}
                rows.append(r)
                print(f"{part:<8} {name:<8} M={M:<6} gemm bf16 {r['gemm_bf16_tflops']:5.0f} fp8 {r['gemm_fp8_tflops']:5.0f} "
                      f"TFLOP/s | with producer: eager {t_eager:7.1f} fused bf16 {t_bf16:7.1f} fp8 {t_fp8:7.1f} us "
                      f"x{r['speedup']:.2f}  err {err:.3f}", flush=True)
                del w, lin, x, y, xq
    return rows


def main() -> int:
    if not torch.cuda.is_available():
        print("needs a CUDA GPU", file=sys.stderr)
        return 2
    res = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
           "kernels": check_kernels(), "layers": layer_times()}
    dest = Path(os.environ.get("OUT", "bench/results")) / "fp8_check.json"
    dest.write_text(json.dumps(res, indent=2))
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
