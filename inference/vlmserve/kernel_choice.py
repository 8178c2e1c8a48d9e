"""Kernels chosen by an environment variable (VLMSERVE_DECODE_ATTENTION): the default is the path a GPU session
measured fastest; the other stays selectable, and CPU serving runs the plain-torch path whatever is chosen."""
from __future__ import annotations

import os

import torch


def env_choice(var: str, choices: tuple[str, ...]) -> str:
    """The value of `var` (the first choice when unset); anything else is refused with the choices."""
    value = os.environ.get(var, choices[0])
    if value not in choices:
        raise ValueError(f"{var} must be one of {', '.join(choices)}, got {value!r}")
    return value


def runs_triton(device: torch.device) -> bool:
    """Whether Triton kernels run on tensors of `device`: CUDA, or any with Triton's interpreter (the CPU tests)."""
    return device.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"
