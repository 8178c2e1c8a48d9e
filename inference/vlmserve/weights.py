"""Loading an official GLM-4V-9B checkpoint directory.

The model is built on the meta device (no memory), every tensor name and shape is checked
against the safetensors headers before any data is read, then tensors are streamed one at a
time straight to the target device and dtype: host memory never holds more than one tensor.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from vlmserve.config import ModelConfig
from vlmserve.model import GLM4V
from vlmserve.model_flags import EMBEDDINGS_CHOICES

# In the official state dict but not needed: with original_rope the rotary inv_freq is unused.
IGNORED_KEYS = {"transformer.rotary_pos_emb.inv_freq"}

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
          "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16, "half": torch.float16}


class CheckpointError(ValueError):
    pass


def dtype_for(device, dtype: str | torch.dtype = "auto") -> torch.dtype:
    """'auto': bfloat16 on GPUs that support it, float16 on older GPUs, float32 on CPU."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype != "auto":
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r} (auto, {', '.join(sorted(DTYPES))})")
        return DTYPES[dtype]
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def shard_files(model_dir: Path) -> dict[str, Path]:
    """name -> file, from model.safetensors.index.json or a single model.safetensors."""
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text()).get("weight_map")
        if not isinstance(weight_map, dict):
            raise CheckpointError(f"{index}: no 'weight_map'")
        files = {name: model_dir / f for name, f in weight_map.items()}
        for f in sorted(set(files.values())):
            if not f.is_file():
                raise CheckpointError(f"{index} names shard {f.name}, which does not exist")
        return files
    single = model_dir / "model.safetensors"
    if single.is_file():
        with safe_open(single, framework="pt") as f:
            return {name: single for name in f.keys()}
    raise CheckpointError(f"{model_dir}: neither model.safetensors.index.json nor model.safetensors")


def _header_shapes(files: dict[str, Path]) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for path in sorted(set(files.values())):
        with safe_open(path, framework="pt") as f:
            for name in f.keys():
                if files.get(name) == path:
                    shapes[name] = tuple(f.get_slice(name).get_shape())
    missing_in_shards = sorted(set(files) - set(shapes))
    if missing_in_shards:
        raise CheckpointError(f"index lists tensors its shards lack: {', '.join(missing_in_shards[:10])}")
    return shapes


def check_names_and_shapes(model: nn.Module, shapes: dict[str, tuple[int, ...]]) -> None:
    expected = {n: tuple(p.shape) for n, p in model.named_parameters()}
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected) - IGNORED_KEYS)
    mismatched = [f"{n}: checkpoint {list(shapes[n])} vs model {list(expected[n])}"
                  for n in sorted(set(expected) & set(shapes)) if shapes[n] != expected[n]]
    problems = []
    if missing:
        problems.append(f"missing tensors ({len(missing)}): " + ", ".join(missing))
    if unexpected:
        problems.append(f"unexpected tensors ({len(unexpected)}): " + ", ".join(unexpected))
    if mismatched:
        problems.append(f"shape mismatches ({len(mismatched)}): " + "; ".join(mismatched))
    if problems:
        raise CheckpointError("checkpoint does not match the config: " + " | ".join(problems))


def _set_tensor(model: nn.Module, name: str, value: torch.Tensor) -> None:
    module_name, _, attr = name.rpartition(".")
    module = model.get_submodule(module_name)
    setattr(module, attr, nn.Parameter(value, requires_grad=False))


def _quantizer(quant: str, keep_16bit):
    """Returns (should_quantize(param_name) -> bool, make(weight, bias) -> module) or None."""
    if quant in (None, "none"):
        return None
    if quant == "fp8":
        from vlmserve.quant.fp8 import FP8Linear, should_quantize_fp8
        return (lambda name: should_quantize_fp8(name, keep_16bit)), FP8Linear.from_weight
    if quant != "nf4":
        raise ValueError(f"unknown quant {quant!r} (expected none, nf4 or fp8)")
    try:
        from vlmserve.quant.linear import NF4Linear
        from vlmserve.quant.policy import should_quantize
    except ImportError as e:
        raise RuntimeError(f"--quant nf4 needs the NF4 module vlmserve.quant, which is not available: {e}") from e
    return (lambda name: should_quantize(name, keep_16bit)), NF4Linear.from_weight


def place_embeddings(model: GLM4V, quant: str, where: str = "auto") -> None:
    """Keeps the token-embedding table in host memory when asked, and by default with nf4 on a GPU: the 4-bit
    path is for small cards, where the table's 1.16 GiB (full size) is better spent on KV cache and on fewer,
    larger dequantization chunks. No-op on CPU."""
    if where not in EMBEDDINGS_CHOICES:
        raise ValueError(f"embeddings must be one of {EMBEDDINGS_CHOICES}, got {where!r}")
    if where == "host" or (where == "auto" and quant == "nf4"):
        model.transformer.embedding.keep_on_host()


def load_model(model_dir, device=None, dtype="auto", quant: str = "none", keep_16bit=(), embeddings: str = "auto"):
    """-> (GLM4V in eval mode on ``device``, ModelConfig); the embedding table placed by `place_embeddings`."""
    model_dir = Path(model_dir)
    device = torch.device(device) if device is not None else default_device()
    dtype = dtype_for(device, dtype)
    cfg = ModelConfig.from_dir(model_dir)
    files = shard_files(model_dir)
    with torch.device("meta"):
        model = GLM4V(cfg)
    shapes = _header_shapes(files)
    bnb = None
    if any(".quant_state.bitsandbytes__" in n for n in shapes):
        # bitsandbytes 4-bit checkpoint (transformers save_pretrained): packed weights + quant-state
        # tensors, possibly in other shards than their weight; assembled as they stream by.
        from vlmserve.quant.bnb_format import BnbAssembler, quantized_weight_names
        bnb = BnbAssembler(quantized_weight_names(shapes))
        params = dict(model.named_parameters())
        shapes = {n: s for n, s in shapes.items() if not bnb.wants(n)}
        shapes.update({n: tuple(params[n].shape) if n in params else (-1,) for n in bnb.weight_names})
    check_names_and_shapes(model, shapes)

    quantizer = _quantizer(quant, keep_16bit)
    linears = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)}
    to_quantize = set()
    if quantizer is not None:
        to_quantize = {n for n in linears if quantizer[0](f"{n}.weight")}
    bnb_modules = {w.rpartition(".")[0] for w in bnb.weight_names} if bnb is not None else set()
    pending: dict[str, dict[str, torch.Tensor]] = {}   # quantized linears waiting for weight + bias

    by_file: dict[Path, list[str]] = {}
    for name, path in files.items():
        by_file.setdefault(path, []).append(name)
    for path in sorted(by_file):
        with safe_open(path, framework="pt") as f:
            for name in sorted(by_file[path]):
                if name in IGNORED_KEYS:
                    continue
                if bnb is not None and bnb.wants(name):  # packed codes / quant state: keep their dtypes
                    done = bnb.add(name, f.get_tensor(name).to(device))
                    if done is None:
                        continue
                    name, t = done, None  # the weight is complete; t=None marks "build from bnb"
                else:
                    t = f.get_tensor(name)
                    if t.is_floating_point():
                        t = t.to(dtype)
                    t = t.to(device)
                module_name, _, attr = name.rpartition(".")
                if module_name in to_quantize or module_name in bnb_modules:
                    parts = pending.setdefault(module_name, {})
                    parts[attr] = t
                    if "weight" in parts and ("bias" in parts or linears[module_name].bias is None):
                        if module_name in bnb_modules:
                            q = bnb.build(f"{module_name}.weight", parts.get("bias"), dtype)
                            lin = linears[module_name]
                            if (q.out_features, q.in_features) != (lin.out_features, lin.in_features):
                                raise CheckpointError(f"{module_name}: bitsandbytes shape {[q.out_features, q.in_features]}"
                                                      f" vs model {[lin.out_features, lin.in_features]}")
                            if module_name not in to_quantize:  # quant none / keep_16bit: dequantize
                                _set_tensor(model, f"{module_name}.weight", q.dequantize(dtype))
                                if parts.get("bias") is not None:
                                    _set_tensor(model, f"{module_name}.bias", parts["bias"])
                                q = None
                        else:
                            q = quantizer[1](parts["weight"], parts.get("bias"), compute_dtype=dtype)
                        if q is not None:
                            parent, _, child = module_name.rpartition(".")
                            setattr(model.get_submodule(parent), child, q)
                        del pending[module_name]
                else:
                    _set_tensor(model, name, t)
                del t
    if pending or (bnb is not None and bnb.missing()):
        detail = bnb.missing() if bnb is not None else {}
        raise CheckpointError(f"incomplete quantized layers: {sorted(pending)} {detail or ''}".strip())
    model.transformer.rotary.build(device)
    place_embeddings(model, quant, embeddings)
    return model.eval().requires_grad_(False), cfg


def init_random(model: GLM4V, device, dtype: torch.dtype, seed: int = 0, std: float | None = None) -> GLM4V:
    """Random weights made directly on ``device`` (benchmarks with full-size shapes, no checkpoint).
    Norm gains 1, biases 0, other weights N(0, 1/fan_in) unless ``std`` is given."""
    # one tensor at a time, already in the target dtype: a float32 detour would need 2x the memory
    for name, p in list(model.named_parameters()):
        _set_tensor(model, name, torch.empty(p.shape, dtype=dtype, device=device))
    g = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("layernorm.weight") or name.endswith("norm1.weight"):
                p.fill_(1.0)
            elif name.endswith(".bias"):
                p.zero_()
            else:
                fan_in = p[0].numel() if p.dim() > 1 else p.shape[-1]
                p.normal_(0.0, std if std is not None else fan_in ** -0.5, generator=g)
    model.transformer.rotary.build(device)
    return model.eval().requires_grad_(False)
