"""FP8 on the GPU: the fused Triton producers against their float32 reference, and each GLM-4V-9B linear
layer timed as it runs in the model — the producing op plus the GEMM — in bf16 and in FP8, at the vision
tower's, the prefill's and the decode step's sizes. Decides which layers gain (bench/results/fp8_check.json).

    PYTHONPATH=inference:bench python bench/fp8_check.py
"""
from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from vlmserve.quant import fp8
from vlmserve.quant import triton_fp8 as T
from vlmserve.quant.fp8 import FP8Linear
from cuda_timing import graph_time_us


def event_time_us(fn, iters: int = 10) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) * 1e3)
    return statistics.median(times)


def timed_us(fn, rows: int) -> float:
    # small launches: a CUDA graph hides the host; large ones: events (a graph of many would hold their outputs)
    return graph_time_us(fn, reps=20) if rows <= 4096 else event_time_us(fn)


def check_kernels() -> list[dict]:
    """Every kernel against the float32 reference (computed on the CPU), fresh random inputs."""
    out = []
    torch.manual_seed(0)
    for K in (1792, 13696):
        M = 333
        x, y = (torch.randn(M, K, device="cuda", dtype=torch.bfloat16) for _ in range(2))
        w, b = torch.randn(K, device="cuda", dtype=torch.bfloat16), torch.randn(K, device="cuda", dtype=torch.bfloat16)
        cases = {
            "quantize_rows": (T.quantize_rows(x), fp8.quantize_rows_reference(x.cpu())),
            "rms_norm_quant": (T.rms_norm_quant(x, w, 1e-5), fp8.rms_norm_quant(x.cpu(), w.cpu(), 1e-5)),
            "gelu_quant": (T.gelu_quant(x), fp8.gelu_quant(x.cpu())),
            "swiglu_quant": (T.swiglu_quant(x, y), fp8.swiglu_quant(x.cpu(), y.cpu())),
        }
        s, q = T.add_layer_norm_quant(x, y, w, b, 1e-6)
        s_ref, q_ref = fp8.add_layer_norm_quant(x.cpu(), y.cpu(), w.cpu(), b.cpu(), 1e-6)
        cases["add_layer_norm_quant"] = (q, q_ref)
        sum_err = [float((s.cpu().float() - s_ref.float()).abs().max())]
        s, q = T.add_rms_norm_quant(x, y, w, 1e-5)
        s_ref, q_ref = fp8.add_rms_norm_quant(x.cpu(), y.cpu(), w.cpu(), 1e-5)
        cases["add_rms_norm_quant"] = (q, q_ref)
        sum_err.append(float((s.cpu().float() - s_ref.float()).abs().max()))
        for name, (got, want) in cases.items():
            gd, wd = got.dequantize().cpu(), want.dequantize()
            row = {"kernel": name, "K": K, "codes_equal": float((got.data.cpu().float() == want.data.float()).float().mean()),
                   "scale_rel_err": float(((got.scale.cpu() - want.scale).abs() / want.scale).max()),
                   "dequant_rel_err": float((gd - wd).norm() / wd.norm()),
                   "nan": bool(torch.isnan(gd).any())}
            out.append(row)
        out.append({"kernel": "residual outputs (add_layer_norm, add_rms_norm)", "K": K, "max_abs_diff": sum_err})
    bad = [r for r in out if "codes_equal" in r and (r["codes_equal"] < 0.99 or r["scale_rel_err"] > 1e-3 or r["nan"])]
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
ROWS = {"vision": [6401 * 4], "decoder": [1611 * 8, 64]}


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

                def bf16_path():
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

                def fp8_path():
                    if producer == "add_ln":
                        _, h = fp8.add_layer_norm_quant(x, y, g, bias, 1e-6)
                    elif producer == "rms":
                        h = fp8.rms_norm_quant(x, g, 1e-5)
                    elif producer == "add_rms":
                        _, h = fp8.add_rms_norm_quant(x, y, g, 1e-5)
                    elif producer == "gelu":
                        h = fp8.gelu_quant(x)
                    elif producer == "swiglu":
                        a, b = x.chunk(2, -1)
                        h = fp8.swiglu_quant(a, b)
                    else:
                        h = fp8.quantize_rows(x)
                    return lin(h)

                xq = fp8.quantize_rows(x[:, :K].contiguous())
                gemm_bf16 = timed_us(lambda: F.linear(x[:, :K], w), M)
                gemm_fp8 = timed_us(lambda: lin(xq), M)
                t_bf16, t_fp8 = timed_us(bf16_path, M), timed_us(fp8_path, M)
                ref = bf16_path().float()
                err = float((fp8_path().float() - ref).norm() / ref.norm())
                flops = 2 * M * K * N
                r = {"part": part, "layer": name, "M": M, "K": K, "N": N, "producer": producer,
                     "gemm_bf16_us": gemm_bf16, "gemm_fp8_us": gemm_fp8,
                     "layer_bf16_us": t_bf16, "layer_fp8_us": t_fp8, "speedup": t_bf16 / t_fp8,
                     "gemm_bf16_tflops": flops / gemm_bf16 / 1e6, "gemm_fp8_tflops": flops / gemm_fp8 / 1e6,
                     "rel_err_vs_bf16": err}
                rows.append(r)
                print(f"{part:<8} {name:<8} M={M:<6} gemm bf16 {r['gemm_bf16_tflops']:5.0f} fp8 {r['gemm_fp8_tflops']:5.0f} "
                      f"TFLOP/s | with producer: bf16 {t_bf16:8.1f} us fp8 {t_fp8:8.1f} us  x{r['speedup']:.2f}  "
                      f"err {err:.3f}", flush=True)
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
