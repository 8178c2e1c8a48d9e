"""Checkpoints saved by transformers' `save_pretrained` with bitsandbytes 4-bit (NF4) quantization.

For a quantized linear `X`, the state dict holds (bitsandbytes `Params4bit` + `QuantState.as_dict(packed=True)`):
  X.weight                                 uint8 [ceil(numel/2), 1]: two codes per byte, first in the high nibble
                                           (another `bnb_4bit_quant_storage` dtype holds the same bytes)
  X.weight.absmax                          float32 [n_blocks]; uint8 when double quantized
  X.weight.quant_map                       float32 [16]: the code book
  X.weight.nested_absmax                   float32 [ceil(n_blocks/256)]   (double quantization only)
  X.weight.nested_quant_map                float32 [256]                  (double quantization only)
  X.weight.quant_state.bitsandbytes__nf4   uint8: UTF-8 JSON {"quant_type", "blocksize", "dtype", "shape",
                                           and with double quantization "nested_blocksize", "nested_dtype",
                                           "nested_offset"}
  X.bias                                   plain tensor, if the layer has one
Unquantized tensors are stored as usual. The pieces of one weight may sit in different shards, so
`BnbAssembler` collects them and hands out complete weights.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .linear import NF4Linear

STATE_KEY_PREFIX = "quant_state.bitsandbytes__"
_TENSOR_PARTS = ("absmax", "quant_map", "nested_absmax", "nested_quant_map")


def split_quant_key(name: str) -> tuple[str, str] | None:
    """"m.weight.absmax" -> ("m.weight", "absmax"); "m.weight.quant_state.bitsandbytes__nf4" ->
    ("m.weight", "quant_state"); None for any other name."""
    marker = "." + STATE_KEY_PREFIX
    if marker in name:
        return name.split(marker, 1)[0], "quant_state"
    for part in _TENSOR_PARTS:
        if name.endswith("." + part):
            base = name[: -len(part) - 1]
            if base.endswith(".weight"):
                return base, part
    return None


def is_bnb_checkpoint(names) -> bool:
    return any("." + STATE_KEY_PREFIX in n for n in names)


def quantized_weight_names(names) -> set[str]:
    """Names of the packed weights (e.g. "transformer.output_layer.weight") in a bnb checkpoint index."""
    return {split_quant_key(n)[0] for n in names if "." + STATE_KEY_PREFIX in n}


def decode_quant_state(tensor: Tensor, name: str = "quant_state") -> dict:
    try:
        state = json.loads(bytes(tensor.detach().to("cpu", torch.uint8).reshape(-1).tolist()).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{name}: not a bitsandbytes quant state (JSON bytes expected): {exc}") from None
    if not isinstance(state, dict):
        raise ValueError(f"{name}: quant state must be a JSON object, got {type(state).__name__}")
    return state


def encode_quant_state(state: dict) -> Tensor:
    return torch.tensor(list(json.dumps(state).encode("utf-8")), dtype=torch.uint8)


@dataclass
class _Pieces:
    tensors: dict[str, Tensor] = field(default_factory=dict)
    state: dict | None = None

    def needed(self) -> list[str]:
        parts = ["weight", "absmax", "quant_map", "quant_state"]
        if self.state is not None and "nested_offset" in self.state:  # double quantized
            parts += ["nested_absmax", "nested_quant_map"]
        have = set(self.tensors) | ({"quant_state"} if self.state is not None else set())
        return [p for p in parts if p not in have]


class BnbAssembler:
    """Collects packed weights and their quant-state tensors as shards stream by.

    `wants(name)` says whether a tensor belongs to a bnb 4-bit weight; `add(name, t)` stores it and returns
    the weight name once all of its pieces are present; `build(weight_name, bias, dtype)` makes the
    NF4Linear (tensors stay on the device they were added on); `missing()` lists incomplete weights.
    """

    def __init__(self, weight_names):
        self.weight_names = set(weight_names)
        self._pending: dict[str, _Pieces] = {}

    def wants(self, name: str) -> bool:
        if name in self.weight_names:
            return True
        parts = split_quant_key(name)
        return parts is not None and parts[0] in self.weight_names

    def add(self, name: str, tensor: Tensor) -> str | None:
        if name in self.weight_names:
            base, part = name, "weight"
        else:
            parts = split_quant_key(name)
            if parts is None or parts[0] not in self.weight_names:
                raise KeyError(f"{name} is not part of a bitsandbytes 4-bit weight")
            base, part = parts
        pieces = self._pending.setdefault(base, _Pieces())
        if part == "quant_state":
            pieces.state = decode_quant_state(tensor, name)
        else:
            pieces.tensors[part] = tensor
        return base if not pieces.needed() else None

    def build(self, weight_name: str, bias: Tensor | None, compute_dtype: torch.dtype) -> NF4Linear:
        pieces = self._pending.pop(weight_name)
        missing = pieces.needed()
        if missing:
            raise ValueError(f"{weight_name}: bitsandbytes pieces missing: {', '.join(missing)}")
        return linear_from_bnb(weight_name, pieces.tensors, pieces.state, bias, compute_dtype)

    def missing(self) -> dict[str, list[str]]:
        return {name: p.needed() for name, p in self._pending.items() if p.needed()}


def linear_from_bnb(name: str, tensors: dict[str, Tensor], state: dict, bias: Tensor | None,
                    compute_dtype: torch.dtype) -> NF4Linear:
    """NF4Linear from one weight's bnb tensors ("weight", "absmax", "quant_map"[, "nested_*"]) and its
    decoded quant-state JSON."""
    quant_type = state.get("quant_type")
    if quant_type != "nf4":
        raise ValueError(f"{name}: quant_type {quant_type!r} is not supported (only nf4)")
    try:
        shape = tuple(int(s) for s in state["shape"])
        blocksize = int(state["blocksize"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{name}: quant state lacks a valid shape/blocksize: {state}") from exc
    if len(shape) != 2:
        raise ValueError(f"{name}: expected a 2-D linear weight, quant state says shape {shape}")
    packed = tensors["weight"].contiguous()
    if packed.dtype != torch.uint8:  # bnb_4bit_quant_storage other than uint8: same bytes
        packed = packed.reshape(-1).view(torch.uint8)
    nested = "nested_offset" in state
    try:
        return NF4Linear.from_quantized(
            packed.reshape(-1), tensors["absmax"].reshape(-1), shape, bias, compute_dtype,
            code=tensors["quant_map"].reshape(-1).float(), blocksize=blocksize,
            nested_absmax=tensors["nested_absmax"] if nested else None,
            nested_code=tensors["nested_quant_map"] if nested else None,
            nested_offset=float(state.get("nested_offset", 0.0)),
            nested_blocksize=int(state.get("nested_blocksize", 256)),
        )
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def to_bnb_tensors(weight_name: str, module: NF4Linear, original_dtype: torch.dtype | None = None) -> dict[str, Tensor]:
    """The state-dict entries bitsandbytes/transformers would save for this NF4Linear (bias not included)."""
    dtype = original_dtype or module.compute_dtype
    state = {
        "quant_type": "nf4",
        "blocksize": module.blocksize,
        "dtype": str(dtype).removeprefix("torch."),
        "shape": [module.out_features, module.in_features],
    }
    w = module.nf4_weight()   # bitsandbytes' layout, whichever the module holds
    out = {weight_name: w.packed.reshape(-1, 1), f"{weight_name}.quant_map": module.code}
    if module.double_quant:
        out[f"{weight_name}.absmax"] = w.nested.q
        out[f"{weight_name}.nested_absmax"] = module.nested_absmax
        out[f"{weight_name}.nested_quant_map"] = module.nested_code
        state.update(nested_blocksize=module.nested_blocksize, nested_dtype="float32", nested_offset=module.nested_offset)
    else:
        out[f"{weight_name}.absmax"] = w.absmax
    out[f"{weight_name}.{STATE_KEY_PREFIX}nf4"] = encode_quant_state(state)
    return out
