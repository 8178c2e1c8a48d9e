"""Tensor ops per decode step (what a CUDA graph of a decode step replays as kernels), counted on CPU.

    PYTHONPATH=inference python bench/decode_op_count.py [--checkout DIR] [--out bench/results/decode_op_count.json]

Runs one engine decode step (engine.DecodeStep, eager) of the tiny fixture model in bf16 for 2 rows under a
dispatch mode that counts every aten op that is not a view. The count per layer approximates the kernels per layer
a GPU decode step replays; on the GPU the norms and SwiGLU are one Triton kernel each, so the script also reports
the count without the ops of the CPU norm / SwiGLU code (pow, mean, rsqrt, silu and their casts are left out).
--checkout points at another tree's inference/ folder (e.g. an older revision exported with git archive) to count
its step the same way.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

VIEWS = {"view", "slice", "select", "transpose", "t", "_unsafe_view", "unsqueeze", "expand", "split",
         "split_with_sizes", "unflatten", "alias", "detach", "reshape", "permute", "squeeze", "chunk", "unbind",
         "flatten", "as_strided"}


def count(inference: Path) -> dict:
    sys.path.insert(0, str(inference))
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from vlmserve.engine.decode_step import DecodeStep
    from vlmserve.engine.kv_cache import SlotAttention, SlotKVCache
    from vlmserve.weights import load_model

    model, _ = load_model(inference / "tests/data/glm4v-tiny-a", "cpu", "bfloat16")
    cfg = model.config
    cache = SlotKVCache(cfg.num_layers, 4, 256, cfg.n_kv_heads, cfg.head_dim, torch.bfloat16, torch.device("cpu"))
    step = DecodeStep(model, SlotAttention(cache), 4, 256, torch.device("cpu"), False)
    step.embeds[:2] = model.transformer.embedding.rows(torch.tensor([[5], [5]]))
    step.cache_pos[:2] = torch.tensor([3, 7])

    class Count(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops: collections.Counter = collections.Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            name = func.overloadpacket.__name__
            same = name == "to" and out is (args[0] if args else None)   # a cast to its own dtype: no kernel
            if name not in VIEWS and not same:
                self.ops[name] += 1
            return out

    def run() -> collections.Counter:
        with torch.inference_mode(), Count() as m:
            step._forward(2, 256)
        return m.ops

    ops = run()
    layers = model.transformer.encoder.layers
    model.transformer.encoder.layers = layers[:-1]       # one layer fewer: the difference is one layer's ops
    fewer = run()
    model.transformer.encoder.layers = layers
    one = ops - fewer
    cpu_only = sum(v for k, v in one.items() if k in ("pow", "mean", "rsqrt", "silu"))
    return {"layers": cfg.num_layers, "ops_per_step": sum(ops.values()), "ops_per_layer": sum(one.values()),
            "ops_per_layer_without_cpu_norm_ops": sum(one.values()) - cpu_only, "ops_per_step_outside_layers":
            sum(ops.values()) - cfg.num_layers * sum(one.values()), "per_layer": dict(one), "ops": dict(ops)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkout", type=Path, default=Path(__file__).resolve().parents[1] / "inference")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    res = count(args.checkout.resolve())
    res["checkout"] = str(args.checkout)
    print(f"{args.checkout}: {res['ops_per_step']} non-view ops per decode step of {res['layers']} layers: "
          f"{res['ops_per_layer']} per layer ({res['ops_per_layer_without_cpu_norm_ops']} without the CPU-only norm "
          f"ops), {res['ops_per_step_outside_layers']} outside the layers. Per layer:")
    for k, v in sorted(res["per_layer"].items(), key=lambda kv: -kv[1]):
        print(f"  {k:24s} {v}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
