"""Command line: ``python -m vlmserve make-tiny|logits|generate|serve``."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from vlmserve.model_flags import add_model_flags, load_from_flags
from vlmserve.serve import add_serve_flags, run as serve_run


def _make_tiny(args) -> int:
    from vlmserve.tiny import make_tiny
    out = make_tiny(args.out, seed=args.seed)
    print(f"tiny random GLM-4V checkpoint written to {out} (its answers are random text)")
    return 0


def _logits(args) -> int:
    import torch
    from safetensors.torch import load_file, save_file

    inputs = load_file(args.inputs)
    if "input_ids" not in inputs:
        raise SystemExit(f"{args.inputs}: no 'input_ids' tensor (has {sorted(inputs)})")
    model = load_from_flags(args, with_tokenizer=False).model
    device = model.transformer.output_layer.weight.device
    ids = inputs["input_ids"].long().to(device)
    get = lambda k: inputs[k].to(device) if k in inputs else None  # noqa: E731
    mask, positions, pixels = get("attention_mask"), get("position_ids"), get("pixel_values")
    trace: dict = {}
    with torch.inference_mode():
        logits = model(ids, pixels, None if mask is None else mask.long(),
                       None if positions is None else positions.long(), trace=trace)
    out = {"logits": logits.float().cpu().contiguous(), "position_ids": trace["position_ids"].cpu().contiguous()}
    if pixels is not None:
        out["vision_embeds"] = trace["vision_embeds"].float().cpu().contiguous()
    if trace.get("attention_mask") is not None:
        out["attention_mask"] = trace["attention_mask"].long().cpu().contiguous()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_file(out, args.out)
    print(f"wrote {', '.join(f'{k} {list(v.shape)}' for k, v in out.items())} to {args.out}")
    return 0


def _generate(args) -> int:
    import torch

    from vlmserve.chat import build_prompt
    from vlmserve.generate import generate
    from vlmserve.image import load_rgb, preprocess

    t0 = time.perf_counter()
    loaded = load_from_flags(args)
    model, cfg, tok = loaded.model, loaded.config, loaded.tokenizer
    load_s = time.perf_counter() - t0
    pixels = None
    if args.image:
        pixels = preprocess(load_rgb(Path(args.image).read_bytes()), cfg.vision.image_size)[None]
    ids = build_prompt(tok, [{"role": "user", "content": args.prompt}], has_image=pixels is not None)
    t0 = time.perf_counter()
    g = generate(model, torch.tensor([ids]), pixels, max_new_tokens=args.max_tokens,
                 temperature=args.temperature, top_p=args.top_p, seed=args.seed, eos_ids=tok.eos_ids)
    gen_s = time.perf_counter() - t0
    print(tok.decode(g.ids[0]))
    print(f"[{len(g.ids[0])} tokens, finish={g.finish_reasons[0]}, load {load_s:.1f}s, generate {gen_s:.2f}s, "
          f"{model.transformer.output_layer.weight.dtype}]", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m vlmserve", description="GLM-4V-9B inference server tools")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("make-tiny", help="write a tiny random checkpoint in the official layout")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_make_tiny)
    p = sub.add_parser("logits", help="full-sequence logits for a safetensors inputs file (parity checks)")
    add_model_flags(p)
    p.add_argument("--inputs", required=True, help="safetensors with input_ids [, attention_mask, position_ids, pixel_values]")
    p.add_argument("--out", required=True)
    p.set_defaults(run=_logits)
    p = sub.add_parser("generate", help="answer one prompt about one image")
    add_model_flags(p)
    p.add_argument("--image", default=None, help="image file (omit for a text-only prompt)")
    p.add_argument("--prompt", required=True)
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=None)
    p.set_defaults(run=_generate)
    p = sub.add_parser("serve", help="OpenAI-compatible HTTP server with continuous batching")
    add_serve_flags(p)
    p.set_defaults(run=serve_run)
    return ap


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
