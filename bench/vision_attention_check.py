"""The vision tower's attention block on the GPU (16 heads of 112 dims over 6,401 tokens per 1120px image, full
GLM-4V-9B widths, random weights, bf16): is cuDNN's kernel faster on heads padded to 128 dims than on the model's
112? Prints a table; writes bench/results/vision_attention_check.json (or $OUT/...).

    PYTHONPATH=inference:bench python bench/vision_attention_check.py [--images 4 8]

Rows, per micro-batch of `--images` images:
- attention alone (SDPA with the engine's backend order, cuDNN first) on q/k/v as the model makes them (views
  into the qkv GEMM's output), on contiguous copies, on heads zero-padded to 128 dims (scale kept at 112**-0.5),
  and on 6,400 tokens (the class token left out: how much the odd 6,401st row costs);
- the whole block (qkv GEMM, attention, output projection) as the model runs it, against the same block with
  zero rows in the qkv weight and zero columns in the output projection so that every head is 128 wide: the
  padded block pays 14% more on those two GEMMs and gains whatever the attention kernel gains. Its output is
  checked against the unpadded block's.
TFLOP/s count the model's 112-dim work (4 L^2 D flops per head) in every row.
"""
from __future__ import annotations

import argparse
import json
import sys

import torch
import torch.nn.functional as F

from result_path import result_path
from vlmserve.attention import FULL_BACKENDS, _backends
from vlmserve.config import glm4v_9b
from vlmserve.gpu_timing import event_time_us

PAD = 128


def sdpa(q, k, v, scale=None):
    with _backends(FULL_BACKENDS):
        return F.scaled_dot_product_attention(q, k, v, scale=scale)


def padded_weights(w_qkv, b_qkv, w_out, heads: int, dim: int):
    """qkv rows [3, H, D] -> [3, H, PAD] with zero rows; output projection columns [H, D] -> [H, PAD] with zeros."""
    C = w_qkv.shape[1]
    wq = torch.zeros(3, heads, PAD, C, device=w_qkv.device, dtype=w_qkv.dtype)
    wq[:, :, :dim] = w_qkv.view(3, heads, dim, C)
    bq = torch.zeros(3, heads, PAD, device=b_qkv.device, dtype=b_qkv.dtype)
    bq[:, :, :dim] = b_qkv.view(3, heads, dim)
    wo = torch.zeros(w_out.shape[0], heads, PAD, device=w_out.device, dtype=w_out.dtype)
    wo[:, :, :dim] = w_out.view(-1, heads, dim)
    return wq.view(-1, C), bq.view(-1), wo.view(w_out.shape[0], -1)


def block(x, w_qkv, b_qkv, w_out, b_out, heads: int, dim: int, scale: float):
    B, L, _ = x.shape
    q, k, v = F.linear(x, w_qkv, b_qkv).view(B, L, 3, heads, dim).permute(2, 0, 3, 1, 4)
    out = sdpa(q, k, v, scale=scale)
    return F.linear(out.transpose(1, 2).reshape(B, L, -1), w_out, b_out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--images", type=int, nargs="+", default=[4])
    p.add_argument("--out", default="bench/results/vision_attention_check.json")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("needs a CUDA GPU", file=sys.stderr)
        return 2
    v = glm4v_9b().vision
    H, C = v.num_heads, v.hidden_size
    D, L = C // H, v.grid ** 2 + 1
    scale = D ** -0.5
    torch.manual_seed(0)
    dev, dt = "cuda", torch.bfloat16
    w_qkv = torch.randn(3 * C, C, device=dev, dtype=dt) * C ** -0.5
    b_qkv = torch.randn(3 * C, device=dev, dtype=dt) * 0.02
    w_out = torch.randn(C, C, device=dev, dtype=dt) * C ** -0.5
    b_out = torch.randn(C, device=dev, dtype=dt) * 0.02
    wq_p, bq_p, wo_p = padded_weights(w_qkv, b_qkv, w_out, H, D)
    res: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                 "cudnn": torch.backends.cudnn.version(), "heads": H, "head_dim": D, "tokens": L, "runs": []}
    with torch.inference_mode():
        for n in args.images:
            flops = 4 * n * H * L * L * D
            x = torch.randn(n, L, C, device=dev, dtype=dt)
            q, k, vv = F.linear(x, w_qkv, b_qkv).view(n, L, 3, H, D).permute(2, 0, 3, 1, 4)
            qp, kp, vp = F.linear(x, wq_p, bq_p).view(n, L, 3, H, PAD).permute(2, 0, 3, 1, 4)
            qc, kc, vc = q.contiguous(), k.contiguous(), vv.contiguous()
            rows = {
                "attention, model's views (112)": lambda: sdpa(q, k, vv),
                "attention, contiguous (112)": lambda: sdpa(qc, kc, vc),
                "attention, heads padded to 128": lambda: sdpa(qp, kp, vp, scale=scale),
                "attention, 6,400 tokens (112)": lambda: sdpa(q[:, :, 1:], k[:, :, 1:], vv[:, :, 1:]),
                "block as the model runs it": lambda: block(x, w_qkv, b_qkv, w_out, b_out, H, D, scale),
                "block with 128-dim heads": lambda: block(x, wq_p, bq_p, wo_p, b_out, H, PAD, scale),
            }
            ref = block(x, w_qkv, b_qkv, w_out, b_out, H, D, scale)
            padded = block(x, wq_p, bq_p, wo_p, b_out, H, PAD, scale)
            err = float((padded.float() - ref.float()).norm() / ref.float().norm())
            attn_err = float((sdpa(qp, kp, vp, scale=scale)[..., :D].float() - sdpa(q, k, vv).float()).abs().max())
            for name, fn in rows.items():
                us = event_time_us(fn, iters=8)
                res["runs"].append({"images": n, "row": name, "us": us, "tflops_112": flops / us / 1e6})
            res["runs"].append({"images": n, "row": "padded vs model: block rel. error", "value": err,
                                "attention max abs diff": attn_err})
            del x, q, k, vv, qp, kp, vp, qc, kc, vc, ref, padded
            torch.cuda.empty_cache()

    print(f"\nvision attention, {res['device']}, cuDNN {res['cudnn']}, {H} heads x {D} dims x {L} tokens")
    print("| images | row | us per layer | TFLOP/s (112-dim work) |\n|---|---|---|---|")
    for r in res["runs"]:
        if "us" in r:
            print(f"| {r['images']} | {r['row']} | {r['us']:.0f} | {r['tflops_112']:.0f} |")
        else:
            print(f"| {r['images']} | {r['row']} | {r['value']:.2e} (attention max abs {r['attention max abs diff']:.1e}) | |")
    out = result_path(args.out)
    out.write_text(json.dumps(res, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
