"""A tiny random GLM-4V checkpoint in the official layout, with a matching tiny tokenizer.

Shapes follow the golden fixture glm4v-tiny-a (hidden 64, 2 + 2 layers, 56 px images -> 4 image
tokens, vocab 512). The tokenizer has 400 ranks (256 bytes + 144 merges learnt from a small
built-in text), so the special tokens sit at 400..413 exactly as in the fixture, and "\\n" is
rank 198 as in the real vocabulary. Answers of this model are random text.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import regex
import torch
from safetensors.torch import save_file

from vlmserve.config import ModelConfig, VisionConfig
from vlmserve.model import GLM4V
from vlmserve.tokenizer import PAT_STR, SPECIAL_TOKENS, write_ranks

N_RANKS = 400
TINY_IMAGE_SIZE = 56

_CORPUS = """Describe this image. What is in the picture? Read the text in this document.
Is this a photo, a document, a chart or a screenshot? The image shows a person standing on
the street next to a red car. There are two people and a dog in the park. This chart shows
the sales of the company over the last years. The document is an invoice with a table of
items, prices and the total amount. Please answer in one short sentence. A cat is sleeping
on the sofa in the living room, and the sun is shining through the window."""


def tiny_config() -> ModelConfig:
    vision = VisionConfig(image_size=TINY_IMAGE_SIZE, patch_size=14, num_positions=17, hidden_size=32,
                          num_hidden_layers=2, num_heads=4, intermediate_size=64, layer_norm_eps=1e-6,
                          in_channels=3, scaling_factor=8.0)
    return ModelConfig(hidden_size=64, num_layers=2, num_attention_heads=4, kv_channels=16,
                       multi_query_group_num=2, ffn_hidden_size=128, padded_vocab_size=512,
                       seq_length=512, eos_token_ids=(400, 407, 409), pad_token_id=400,
                       boi_token_id=410, eoi_token_id=411, torch_dtype="float32", vision=vision)


def _byte_order() -> list[int]:
    """GPT-2's byte order (printable bytes first): puts b"\\n" at rank 198 like the real ranks."""
    first = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    return first + [b for b in range(256) if b not in first]


def tiny_ranks(n_ranks: int = N_RANKS) -> dict[bytes, int]:
    """Byte-level BPE learnt on _CORPUS: 256 single bytes, then the most frequent merges."""
    ranks = {bytes([b]): i for i, b in enumerate(_byte_order())}
    words = Counter(tuple(bytes([c]) for c in w.encode()) for w in regex.findall(PAT_STR, _CORPUS))
    while len(ranks) < n_ranks:
        pairs = Counter()
        for w, count in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += count
        pairs = {p: c for p, c in pairs.items() if p[0] + p[1] not in ranks}
        if not pairs:
            raise RuntimeError("tiny corpus too small for the requested number of ranks")
        (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))   # deterministic tie-break
        ranks[a + b] = len(ranks)
        merged = Counter()
        for w, count in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] += count
        words = merged
    return ranks


def random_state_dict(cfg: ModelConfig, seed: int) -> dict[str, torch.Tensor]:
    """Weights scaled like the fixture's (fan-in), so that every input and layout detail matters."""
    with torch.device("meta"):
        shapes = {n: p.shape for n, p in GLM4V(cfg).named_parameters()}
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in shapes.items():
        x = torch.randn(shape, generator=g)
        if name.endswith("norm.weight") or name.endswith("norm1.weight"):
            x = 1 + 0.1 * x
        elif name.endswith(".bias"):
            x = 0.05 * x
        elif name.endswith((".boi", ".eoi")):
            pass
        elif name.endswith(("cls_embedding", "position_embedding.weight", "word_embeddings.weight")):
            x = 0.5 * x
        else:
            x = x * (shape[1:].numel() if len(shape) > 1 else shape[0]) ** -0.5
        out[name] = x.contiguous()
    return out


def make_tiny(out_dir, seed: int = 0) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = tiny_config()
    (out / "config.json").write_text(json.dumps({"_name_or_path": "tiny-random-glm-4v", **cfg.to_json()}, indent=2))
    state = random_state_dict(cfg, seed)
    names = sorted(state)
    halves = {"model-00001-of-00002.safetensors": [n for n in names if ".vision." not in n],
              "model-00002-of-00002.safetensors": [n for n in names if ".vision." in n]}
    weight_map = {}
    for file, part in halves.items():
        save_file({n: state[n] for n in part}, out / file, metadata={"format": "pt"})
        weight_map.update({n: file for n in part})
    total = sum(t.numel() * t.element_size() for t in state.values())
    (out / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    write_ranks(tiny_ranks(), out / "tokenizer.model")
    (out / "tokenizer_config.json").write_text(json.dumps({
        "padding_side": "left", "model_max_length": cfg.seq_length, "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>", "image_size": cfg.vision.image_size,
        "clean_up_tokenization_spaces": False,
        "added_tokens_decoder": {str(N_RANKS + i): {"content": t, "special": True} for i, t in enumerate(SPECIAL_TOKENS)},
    }, indent=2))
    return out


def default_cache_dir() -> Path:
    base = os.environ.get("VLM_CACHE")
    return Path(base) / "tiny-random" if base else Path.home() / ".cache" / "vlmserve" / "tiny-random"


def ensure_tiny(cache_dir=None, seed: int = 0) -> Path:
    """The tiny random checkpoint in ``cache_dir`` (made once). Safe when several processes race:
    each builds in its own temporary folder and the first rename wins."""
    target = Path(cache_dir) if cache_dir else default_cache_dir()
    if (target / "model.safetensors.index.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tiny-", dir=target.parent))
    try:
        make_tiny(tmp, seed)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "model.safetensors.index.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_model(name_or_dir: str) -> Path:
    """'tiny-random' -> the cached tiny checkpoint; anything else is a checkpoint directory."""
    if name_or_dir == "tiny-random":
        return ensure_tiny()
    path = Path(name_or_dir)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"--model {name_or_dir}: not a checkpoint directory (no config.json); "
                                "use a GLM-4V-9B folder or 'tiny-random'")
    return path
