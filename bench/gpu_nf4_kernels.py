"""NF4 Triton kernels on the GPU: correctness against the torch fallback, then speed against bf16.

Run from the repo root on a CUDA machine with Triton:
    PYTHONPATH=inference python bench/gpu_nf4_kernels.py [--out bench/results/gpu_nf4_kernels.json] [--quick]

1. Correctness: every candidate block configuration of every path (GEMV M=1, split-K M<=16, tiled GEMM)
   on random shapes (odd N, K multiple of 64, with/without bias, plain and double-quantized absmax,
   bf16/fp16/fp32), compared with an fp32 matmul of the dequantized weight; the fallback's own error
   (dequantize to the compute dtype + F.linear, i.e. cuBLAS) is printed beside it. A kernel passes when
   its error is within 2x the fallback's + a small floor.
2. Speed on the real GLM-4V-9B shapes: the tuned NF4 kernel vs torch bf16 F.linear, timed as CUDA-graph
   replays (GPU time, no Python launch overhead) and eagerly (what an un-graphed caller pays).
Prints tables; writes the numbers as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import torch
import torch.nn.functional as F

from cuda_timing import graph_time_us
from vlmserve.quant import triton_nf4 as T
from vlmserve.quant.linear import NF4Linear

GLM_SHAPES = [  # (name, N, K)
    ("lm.qkv", 4608, 4096),
    ("lm.dense", 4096, 4096),
    ("lm.h_to_4h", 27392, 4096),
    ("lm.4h_to_h", 4096, 13696),
    ("output_layer", 151552, 4096),
    ("vit.qkv", 5376, 1792),
    ("vit.fc1", 15360, 1792),
    ("vit.fc2", 1792, 15360),
    ("proj.gate", 13696, 4096),
]


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    return ((out.float() - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item()


def check_correctness(quick: bool) -> list[dict]:
    g = torch.Generator(device="cuda").manual_seed(0)
    cases = [  # (M, N, K, dtype, bias, double_quant); the first three try every candidate config
        (1, 1000, 4096, torch.bfloat16, True, False),
        (3, 1000, 4096, torch.bfloat16, True, True),
        (1000, 1333, 1792, torch.bfloat16, True, False),
        (1, 4104, 13696, torch.bfloat16, False, True),
        (1, 777, 1792, torch.float16, True, False),
        (1, 300, 640, torch.float32, True, True),
        (16, 4104, 1792, torch.bfloat16, False, False),
        (7, 555, 13696, torch.float16, True, False),
        (5, 300, 640, torch.float32, False, False),
        (17, 1000, 1792, torch.bfloat16, True, False),
        (512, 4104, 4096, torch.bfloat16, False, True),
        (4096, 4608, 4096, torch.bfloat16, True, False),
        (333, 700, 640, torch.float16, True, True),
        (100, 300, 640, torch.float32, True, False),
    ]
    if quick:
        cases = cases[::3]
    rows = []
    for i, (m, n, k, dtype, has_bias, dq) in enumerate(cases):
        w = torch.randn(n, k, device="cuda", generator=g) * 0.02
        x = torch.randn(m, k, device="cuda", generator=g).to(dtype)
        b = (torch.randn(n, device="cuda", generator=g) * 0.1).to(dtype) if has_bias else None
        lin = NF4Linear.from_weight(w, b, compute_dtype=dtype, double_quant=dq)
        wq = lin.dequantize(dtype)
        ref = F.linear(x.float(), wq.float(), None if b is None else b.float())
        fb_err = rel_err(F.linear(x, wq, b), ref)
        # all candidates on the first cases; elsewhere the default and one of each x_mode
        cands = T.candidates(m) if i < 3 else list({c.x_mode: c for c in T.candidates(m)}.values())
        for cfg in cands:
            try:
                out = T.nf4_matmul(x, lin._operand(), lin.bias, config=cfg)
            except Exception as exc:  # a config that cannot compile on this GPU is reported, not fatal
                rows.append(dict(M=m, N=n, K=k, dtype=str(dtype), bias=has_bias, double_quant=dq,
                                 config=str(cfg), error=f"{type(exc).__name__}: {str(exc)[:200]}", ok=None))
                continue
            err = rel_err(out, ref)
            ok = err <= 2 * fb_err + (1e-5 if dtype == torch.float32 else 2e-3)
            rows.append(dict(M=m, N=n, K=k, dtype=str(dtype).removeprefix("torch."), bias=has_bias,
                             double_quant=dq, config=str(cfg), kernel_rel_err=err, fallback_rel_err=fb_err, ok=ok))
        # the module path (default config when not tuning, reshape, dtype handling)
        out = lin(x.view(1, m, k)).view(m, n)
        err = rel_err(out, ref)
        rows.append(dict(M=m, N=n, K=k, dtype=str(dtype).removeprefix("torch."), bias=has_bias, double_quant=dq,
                         config="NF4Linear.forward (tuned)", kernel_rel_err=err, fallback_rel_err=fb_err,
                         ok=err <= 2 * fb_err + (1e-5 if dtype == torch.float32 else 2e-3)))
    return rows


def eager_time_us(fn, reps: int = 50) -> float:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) * 1e6 / reps


def bench_speed(quick: bool) -> list[dict]:
    rows = []
    for name, n, k in GLM_SHAPES:
        w16 = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) * 0.02
        lin = NF4Linear.from_weight(w16, None, compute_dtype=torch.bfloat16)
        ms = [1, 4, 16] if name == "output_layer" else [1, 4, 16, 512, 4096]
        if name.startswith("vit"):
            ms = [6400] if quick else [1, 16, 1600, 6400]
        if quick:
            ms = ms[:1] + ms[-1:]
        for m in ms:
            x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
            lin(x)  # tune on first use
            cfg = T.tuned_configs().get((T._m_bucket(m), n, k, torch.bfloat16, False, False))
            err = rel_err(lin(x), F.linear(x.float(), lin.dequantize(torch.float32)))  # tuned config is right
            t_bf16 = graph_time_us(lambda: F.linear(x, w16))
            t_nf4 = graph_time_us(lambda: lin(x))
            e_bf16 = eager_time_us(lambda: F.linear(x, w16))
            e_nf4 = eager_time_us(lambda: lin(x))
            flops = 2 * m * n * k
            bytes_nf4 = n * k // 2 + n * k // 64 * 4 + m * k * 2 + m * n * 2
            rows.append(dict(shape=name, M=m, N=n, K=k, bf16_us=t_bf16, nf4_us=t_nf4, speedup=t_bf16 / t_nf4,
                             bf16_eager_us=e_bf16, nf4_eager_us=e_nf4,
                             nf4_GBps=bytes_nf4 / t_nf4 / 1e3, nf4_TFLOPs=flops / t_nf4 / 1e6,
                             bf16_TFLOPs=flops / t_bf16 / 1e6, config=str(cfg), rel_err_vs_fp32=err))
            r = rows[-1]
            print(f"{name:13s} M={m:5d} N={n:6d} K={k:5d}  bf16 {t_bf16:9.1f} us  nf4 {t_nf4:9.1f} us  "
                  f"x{r['speedup']:5.2f}  eager bf16 {e_bf16:8.1f} nf4 {e_nf4:8.1f}  "
                  f"nf4 {r['nf4_GBps']:7.0f} GB/s {r['nf4_TFLOPs']:6.1f} TF/s  err {err:.1e}  {cfg}", flush=True)
        del w16, lin
        torch.cuda.empty_cache()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/results/gpu_nf4_kernels.json")
    ap.add_argument("--quick", action="store_true", help="fewer cases (smoke run)")
    ap.add_argument("--skip-correctness", action="store_true")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("needs a CUDA GPU", file=sys.stderr)
        return 2
    import triton

    t0 = time.time()
    os.environ["VLMSERVE_NF4_TUNE"] = "0"  # correctness runs the default config on the module path
    corr = [] if args.skip_correctness else check_correctness(args.quick)
    os.environ["VLMSERVE_NF4_TUNE"] = "1"
    bad = [r for r in corr if r.get("ok") is False]
    failed_compile = [r for r in corr if r.get("ok") is None]
    print(f"\n== correctness: {len(corr)} kernel runs, {len(bad)} wrong, {len(failed_compile)} not compiled "
          f"({time.time() - t0:.0f} s)")
    for r in corr:
        if r.get("ok") is not True:
            print("  ", r)
    worst = {}
    for r in corr:
        if r.get("ok") is not None:
            key = (r["M"], r["N"], r["K"], r["dtype"], r["double_quant"])
            worst[key] = max(worst.get(key, (0, 0))[0], r["kernel_rel_err"]), r["fallback_rel_err"]
    print(f"{'M':>5} {'N':>6} {'K':>6} {'dtype':>9} {'dq':>3}  worst kernel rel err  fallback rel err")
    for (m, n, k, dt, dq), (ke, fe) in worst.items():
        print(f"{m:5d} {n:6d} {k:6d} {dt:>9} {int(dq):3d}  {ke:20.2e}  {fe:16.2e}")
    t1 = time.time()
    print("\n== speed (bf16, CUDA-graph replay GPU time per call; eager = back-to-back Python calls)")
    speed = bench_speed(args.quick)
    print(f"({time.time() - t1:.0f} s)")
    result = dict(
        machine=dict(gpu=torch.cuda.get_device_name(), torch=torch.__version__, triton=triton.__version__,
                     python=platform.python_version()),
        command=" ".join(["python"] + sys.argv),
        correctness=corr, correctness_ok=not bad, speed=speed,
    )
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {args.out}")
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
