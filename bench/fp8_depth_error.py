"""How FP8's error against bf16 grows with depth on RANDOM weights (CPU, FP8 emulated; no GPU needed).

The full-size GPU comparison on random weights (bench/serve_throughput.py --compare) gave a logits relative
error of 0.62 and almost no top-1 agreement, against 0.13 on the 2+2-layer tiny fixture. This script
builds GLM-4V-shaped random models of growing depth (narrow widths, so the CPU can run them; weights drawn
as the benchmarks draw them), and measures, on the same inputs, bf16 against float32 and FP8 (e4m3
weights and activations, emulated in float32, output in bf16) against bf16 and float32. If bf16 alone
drifts far from float32 at full depth too, the random network amplifies any rounding and the 0.62 says
little about FP8 on trained weights; if bf16 stays close while FP8 does not, it does.

    PYTHONPATH=inference python bench/fp8_depth_error.py     # -> bench/results/fp8_depth_error.json

With --full-size (a GPU with ~120 GB free): the real GLM-4V-9B shapes on CUDA, the caption prompt of the serving
benchmark and a random image, float32 / bf16 / FP8 (the product's FP8 kernels) side by side
(-> $OUT or bench/results/fp8_depth_error_full.json).
"""
from __future__ import annotations

import copy
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

from vlmserve.model import GLM4V
from vlmserve.quant.fp8_error import compare
from vlmserve.tiny import tiny_config
from vlmserve.weights import init_random

sys.path.insert(0, str(Path(__file__).parent))
from serve_throughput import prompt, quantize_linears  # noqa: E402


def config(vision_layers: int, decoder_layers: int):
    cfg = tiny_config()
    vision = dataclasses.replace(cfg.vision, hidden_size=128, num_heads=4, intermediate_size=512,
                                 num_hidden_layers=vision_layers)
    return dataclasses.replace(cfg, hidden_size=256, num_attention_heads=8, kv_channels=32, multi_query_group_num=2,
                               ffn_hidden_size=512, num_layers=decoder_layers, vision=vision)


def full_size() -> int:
    """bf16 against float32 and FP8 against both, at full size on the GPU: whether FP8's error on random weights
    is the random network amplifying any rounding (bf16 drifts as far) or FP8's own."""
    import os

    from vlmserve.config import glm4v_9b

    torch.manual_seed(0)
    cfg = glm4v_9b()
    with torch.device("meta"):
        model = GLM4V(cfg)
    f32 = init_random(model, "cuda", torch.float32, seed=0)
    bf16 = copy.deepcopy(f32).to(torch.bfloat16)
    ids = torch.tensor([prompt("caption")], device="cuda")
    px = torch.randn(1, 3, cfg.vision.image_size, cfg.vision.image_size, device="cuda")
    row = {"bf16_vs_fp32": compare(f32, bf16, ids, px, new_tokens=16)}
    print(f"full size: bf16 vs fp32 {row['bf16_vs_fp32']}", flush=True)
    fp8 = copy.deepcopy(bf16)
    quantize_linears(fp8, "fp8")
    row["fp8_vs_fp32"] = compare(f32, fp8, ids, px, new_tokens=16)
    print(f"full size: fp8 vs fp32 {row['fp8_vs_fp32']}", flush=True)
    row["fp8_vs_bf16"] = compare(bf16, fp8, ids, px, new_tokens=16)
    print(f"full size: fp8 vs bf16 {row['fp8_vs_bf16']}", flush=True)
    out = Path(os.environ.get("OUT", "bench/results")) / "fp8_depth_error_full.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": torch.cuda.get_device_name(), "model": "GLM-4V-9B shapes, random weights (seed 0)",
                               "input": "caption prompt + random image", "vision_layers": cfg.vision.num_hidden_layers,
                               "decoder_layers": cfg.num_layers, **row}, indent=2))
    print(f"wrote {out}")
    return 0


def main() -> int:
    if "--full-size" in sys.argv[1:]:
        return full_size()
    torch.manual_seed(0)
    rows = []
    for v_layers, d_layers in ((2, 2), (8, 6), (24, 16), (63, 40)):
        cfg = config(v_layers, d_layers)
        with torch.device("meta"):
            model = GLM4V(cfg)
        f32 = init_random(model, "cpu", torch.float32, seed=0)
        bf16 = copy.deepcopy(f32).to(torch.bfloat16)
        fp8 = copy.deepcopy(bf16)
        quantize_linears(fp8, "fp8")
        ids = torch.tensor([[cfg.pad_token_id - 300, 5, 7, cfg.boi_token_id, cfg.pad_token_id, cfg.eoi_token_id,
                             11, 12, 13, 14]])
        px = torch.randn(1, 3, cfg.vision.image_size, cfg.vision.image_size)
        t = time.perf_counter()
        row = {"vision_layers": v_layers, "decoder_layers": d_layers,
               "bf16_vs_fp32": compare(f32, bf16, ids, px, new_tokens=8),
               "fp8_vs_bf16": compare(bf16, fp8, ids, px, new_tokens=8),
               "fp8_vs_fp32": compare(f32, fp8, ids, px, new_tokens=8)}
        rows.append(row)
        print(f"vision {v_layers:>2} + decoder {d_layers:>2} layers: logits rel err  bf16/fp32 "
              f"{row['bf16_vs_fp32']['logits_rel_err']:.3f}  fp8/bf16 {row['fp8_vs_bf16']['logits_rel_err']:.3f}  "
              f"fp8/fp32 {row['fp8_vs_fp32']['logits_rel_err']:.3f};  top-1 agreement bf16/fp32 "
              f"{row['bf16_vs_fp32']['top1_agreement']:.2f}  fp8/bf16 {row['fp8_vs_bf16']['top1_agreement']:.2f}"
              f"  ({time.perf_counter() - t:.0f}s)", flush=True)
    out = Path("bench/results/fp8_depth_error.json")
    out.write_text(json.dumps({"device": "cpu (FP8 emulated in float32)", "widths": "vision 128/512, decoder 256/512",
                               "rows": rows}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
