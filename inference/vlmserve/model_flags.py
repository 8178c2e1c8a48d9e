"""The model flags shared by ``serve``, ``generate`` and ``logits``, and the one loader they feed.

Each command adds these flags with `add_model_flags` and loads with `load_from_flags`, so a new
option (a quantization mode, a dtype) reaches every command at once.
"""
from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("vlmserve.model")

QUANT_CHOICES = ("none", "nf4", "fp8")
DTYPE_CHOICES = ("auto", "bfloat16", "float16", "float32")
EMBEDDINGS_CHOICES = ("auto", "device", "host")  # where the token-embedding table lives (weights.place_embeddings)


def add_model_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="checkpoint folder (official layout) or 'tiny-random'")
    p.add_argument("--dtype", choices=DTYPE_CHOICES, default="auto",
                   help="compute dtype (auto: bf16 on GPUs that have it, else fp16; fp32 on CPU)")
    p.add_argument("--quant", choices=QUANT_CHOICES, default="none",
                   help="quantize the linear layers on load: nf4 (4-bit) or fp8 (e4m3, Hopper GPUs)")
    p.add_argument("--keep-16bit", action="append", default=[], metavar="PATTERN",
                   help="keep layers matching this glob over the module path in 16-bit when quantizing "
                        "(repeatable; e.g. output_layer, vision, 'encoder.layers.3?.*')")
    p.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda when available)")
    p.add_argument("--embeddings", choices=EMBEDDINGS_CHOICES, default="auto",
                   help="where the token-embedding table lives (auto: host memory with --quant nf4, which frees "
                        "1.16 GiB of GPU memory at full size; the device otherwise)")


@dataclass
class LoadedModel:
    model: object            # vlmserve.model.GLM4V
    config: object           # vlmserve.config.ModelConfig
    tokenizer: object        # vlmserve.tokenizer.Tokenizer, or None when not asked for
    model_dir: Path


def load_from_flags(args: argparse.Namespace, with_tokenizer: bool = True) -> LoadedModel:
    """Loads the checkpoint (and its tokenizer) as the flags of `add_model_flags` say. `logits`
    works on token ids and runs on checkpoints that carry no tokenizer, hence `with_tokenizer`."""
    import torch

    from .tiny import resolve_model
    from .tokenizer import Tokenizer
    from .weights import default_device, load_model

    model_dir = resolve_model(args.model)
    if args.model == "tiny-random":
        log.warning("using the TINY RANDOM model: its answers are random text, not GLM-4V")
    device = torch.device(args.device) if args.device else default_device()
    model, config = load_model(model_dir, device, args.dtype, quant=args.quant, keep_16bit=args.keep_16bit,
                               embeddings=args.embeddings)
    return LoadedModel(model, config, Tokenizer.from_dir(model_dir) if with_tokenizer else None, model_dir)
