"""The vision tower's MLP on the GPU, as the model runs it (its chunks of fc1's output, full GLM-4V-9B widths, random
weights): GELU as fc1's cuBLASLt epilogue against the separate erf GELU kernel, and FP8's GELU + row quantization in one
pass against the two-pass walk. Prints a table; writes bench/results/vision_mlp_check.json (or $OUT/...).

    PYTHONPATH=inference:bench python bench/vision_mlp_check.py [--images 4] [--chunks 2048 4096 ...]

Rows:
- time of one layer's MLP over `--images` 1120px images (6,401 tokens each), bf16 with each GELU choice
  (VLMSERVE_VISION_GELU), and FP8;
- error of each bf16 choice against the same MLP in float32 with the exact GELU (relative Frobenius norm), and
  how far the epilogue is from GELU's tanh form on the float32 accumulator (it should be that form);
- the FP8 producers alone (GELU + e4m3 rows of fc1's output, 15,360 wide; SwiGLU + e4m3 of the decoder's 13,696-wide
  MLP rows): each row read once (in registers) and the two-pass walk, microseconds, GB/s of HBM traffic (bf16 in,
  e4m3 + scales out), and whether their codes agree;
- with --chunks: the same layer's MLP, bf16 (epilogue) and FP8, with fc1's output made in chunks of at most that
  many tokens (MLP.tokens_per_chunk): a GEMM's last wave of output tiles may leave most SMs idle, and how much
  depends on its rows; a chunk as large as the input means no chunking.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

import torch
import torch.nn.functional as F

from result_path import result_path
from vlmserve import fused
from vlmserve import triton_fused as T
from vlmserve.config import glm4v_9b
from vlmserve.gpu_timing import event_time_us
from vlmserve.quant.fp8 import FP8Linear
from vlmserve.vision import MLP


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def with_gelu(choice: str, fn):
    old = os.environ.get("VLMSERVE_VISION_GELU")
    os.environ["VLMSERVE_VISION_GELU"] = choice
    try:
        return fn()
    finally:
        if old is None:
            os.environ.pop("VLMSERVE_VISION_GELU")
        else:
            os.environ["VLMSERVE_VISION_GELU"] = old


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--chunks", type=int, nargs="*", default=[],
                   help="tokens per chunk to time the bf16 and FP8 MLP with (a sweep; none: the default only)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the --chunks sweep")
    p.add_argument("--out", default="bench/results/vision_mlp_check.json")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("needs a CUDA GPU", file=sys.stderr)
        return 2
    cfg = glm4v_9b()
    v = cfg.vision
    rows = args.images * (v.grid ** 2 + 1)
    torch.manual_seed(0)
    mlp = MLP(cfg).to("cuda", torch.bfloat16)
    with torch.no_grad():
        for lin in (mlp.fc1, mlp.fc2):
            lin.weight.normal_(0, lin.in_features ** -0.5)
            lin.bias.normal_(0, 0.02)
    x = torch.randn(rows, v.hidden_size, device="cuda", dtype=torch.bfloat16)
    res: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows,
                 "images": args.images, "tokens_per_chunk": MLP.tokens_per_chunk}
    flops = 4 * rows * v.hidden_size * v.intermediate_size

    with torch.inference_mode():
        # references on one chunk's worth of rows (float32 of the full 25k rows would take ~3 GB per tensor)
        xs = x[:2048]
        h32 = xs.float() @ mlp.fc1.weight.float().t() + mlp.fc1.bias.float()
        ref = F.gelu(h32.double()).float() @ mlp.fc2.weight.float().t() + mlp.fc2.bias.float()
        for choice in fused.GELU_CHOICES:
            t = with_gelu(choice, lambda: event_time_us(lambda: mlp(x)))
            y = with_gelu(choice, lambda: mlp(xs))
            g = with_gelu(choice, lambda: fused.linear_gelu(xs, mlp.fc1.weight, mlp.fc1.bias))
            res[choice] = {"us": t, "tflops": flops / t / 1e6, "rel_err_vs_fp32_exact": rel(y, ref),
                           "gelu_rel_err_vs_exact": rel(g, F.gelu(h32.double())),
                           "gelu_rel_err_vs_tanh_form": rel(g, F.gelu(h32, approximate="tanh"))}
        res["epilogue_speedup"] = res["exact"]["us"] / res["epilogue"]["us"]

        # FP8 producers alone: GELU + e4m3 of fc1's output (the vision tower), SwiGLU + e4m3 of dense_h_to_4h's
        # output (the decoder's prefill, 8 image prompts)
        res["fp8_producers"] = {}
        for name, M, K in (("gelu", rows, v.intermediate_size), ("swiglu", 8 * 1611, cfg.ffn_hidden_size)):
            a = torch.randn(M, K, device="cuda", dtype=torch.bfloat16)
            b = torch.randn(M, K, device="cuda", dtype=torch.bfloat16) if name == "swiglu" else None
            fn = (lambda: T.gelu(a, True)) if name == "gelu" else (lambda: T.swiglu(a, b, True))
            moved = M * K * (2 * (1 if b is None else 2) + 1) + M * 4   # bf16 in, e4m3 out, a float32 scale per row
            timings, outs = {}, {}
            for variant, one_pass_max in (("one_pass", T.ONE_PASS_MAX), ("two_pass", 0)):
                saved, T.ONE_PASS_MAX = T.ONE_PASS_MAX, one_pass_max
                try:
                    timings[variant] = event_time_us(fn)
                    outs[variant] = fn()
                finally:
                    T.ONE_PASS_MAX = saved
            base = outs["two_pass"]
            res["fp8_producers"][name] = {
                "rows": M, "cols": K, **{f"{k}_us": t for k, t in timings.items()},
                **{f"{k}_gbps": moved / t / 1e3 for k, t in timings.items()},
                "codes_equal": {k: float((o.data.float() == base.data.float()).float().mean()) for k, o in outs.items()},
                "scales_equal": {k: bool(torch.equal(o.scale, base.scale)) for k, o in outs.items()}}
            del a, b, outs
        fp8 = MLP(cfg)
        fp8.fc1 = FP8Linear.from_weight(mlp.fc1.weight, mlp.fc1.bias, torch.bfloat16)
        fp8.fc2 = FP8Linear.from_weight(mlp.fc2.weight, mlp.fc2.bias, torch.bfloat16)
        xq = fused.quantize_rows(x)
        t = event_time_us(lambda: fp8(xq))
        res["fp8"] = {"us": t, "tflops": flops / t / 1e6, "rel_err_vs_fp32_exact": rel(fp8(xq)[:len(xs)], ref)}
        # Interleaved rounds, the median per size: timed one size after another, the same 2048-token setting once
        # measured 4,628 us inside a sweep and 4,150 us just before it (H100), more than the sizes differed.
        res["chunks"] = []
        times: dict[int, dict[str, list[float]]] = {c: {"bf16": [], "fp8": []} for c in args.chunks}
        for _ in range(args.rounds):
            for chunk in args.chunks:
                mlp.tokens_per_chunk = fp8.tokens_per_chunk = chunk
                times[chunk]["bf16"].append(event_time_us(lambda: mlp(x), iters=3))
                times[chunk]["fp8"].append(event_time_us(lambda: fp8(xq), iters=3))
        for chunk in args.chunks:
            bf, f8 = (statistics.median(times[chunk][k]) for k in ("bf16", "fp8"))
            res["chunks"].append({"tokens_per_chunk": chunk, "bf16_us": bf, "bf16_tflops": flops / bf / 1e6,
                                  "fp8_us": f8, "fp8_tflops": flops / f8 / 1e6,
                                  "bf16_spread_us": max(times[chunk]["bf16"]) - min(times[chunk]["bf16"]),
                                  "fc1_out_mib": min(chunk, rows) * v.intermediate_size * 2 / 2**20})
        if args.chunks:
            del mlp.tokens_per_chunk, fp8.tokens_per_chunk

    print(f"\nvision MLP, {args.images} images ({rows} tokens), {res['device']}")
    print("| path | us per layer | TFLOP/s | rel. error vs float32 exact GELU |\n|---|---|---|---|")
    for k in (*fused.GELU_CHOICES, "fp8"):
        print(f"| {k} | {res[k]['us']:.0f} | {res[k]['tflops']:.0f} | {res[k]['rel_err_vs_fp32_exact']:.2e} |")
    print(f"epilogue vs exact: {res['epilogue_speedup']:.3f}x; epilogue GELU vs tanh form "
          f"{res['epilogue']['gelu_rel_err_vs_tanh_form']:.1e}, vs erf form {res['epilogue']['gelu_rel_err_vs_exact']:.1e} "
          f"(separate kernel: {res['exact']['gelu_rel_err_vs_exact']:.1e})")
    print("| FP8 producer | rows x cols | one pass | two passes | codes equal |\n|---|---|---|---|---|")
    for name, q in res["fp8_producers"].items():
        print(f"| {name} | {q['rows']} x {q['cols']} | " + " | ".join(
            f"{q[k + '_us']:.0f} us ({q[k + '_gbps']:.0f} GB/s)" for k in ("one_pass", "two_pass"))
            + f" | {min(q['codes_equal'].values()):.4f} |")
    if res["chunks"]:
        print("| tokens per chunk | bf16 us (TFLOP/s) | bf16 spread over rounds, us | FP8 us (TFLOP/s) | fc1 output, "
              "bf16 MiB |\n|---|---|---|---|---|")
        for c in res["chunks"]:
            print(f"| {c['tokens_per_chunk']} | {c['bf16_us']:.0f} ({c['bf16_tflops']:.0f}) | {c['bf16_spread_us']:.0f} | "
                  f"{c['fp8_us']:.0f} ({c['fp8_tflops']:.0f}) | {c['fc1_out_mib']:.0f} |")
    out = result_path(args.out)
    out.write_text(json.dumps(res, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
