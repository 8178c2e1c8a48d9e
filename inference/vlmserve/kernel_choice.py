"""How kernels are chosen. By an environment variable (VLMSERVE_DECODE_ATTENTION): the default is the path a GPU
session measured fastest; the other stays selectable, and CPU serving runs the plain-torch path whatever is chosen.
By timing (`fastest`): the NF4 and FP8 matmul tuners time their candidates for a shape on its first call."""
from __future__ import annotations

import os
from typing import Callable, Iterable, TypeVar

import torch

C = TypeVar("C")


class Rejected(Exception):
    """Raised by a measure function for a candidate that ran but must not be used (its output is wrong)."""


def env_choice(var: str, choices: tuple[str, ...]) -> str:
    """The value of `var` (the first choice when unset); anything else is refused with the choices."""
    value = os.environ.get(var, choices[0])
    if value not in choices:
        raise ValueError(f"{var} must be one of {', '.join(choices)}, got {value!r}")
    return value


def env_int(var: str, default: int, lo: int, hi: int) -> int:
    """The whole number in `var` (blank or unset: `default`), refused with the variable's name outside lo..hi."""
    raw = os.environ.get(var)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{var} must be a whole number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ValueError(f"{var} must be {lo}..{hi}, got {value}")
    return value


def runs_triton(device: torch.device) -> bool:
    """Whether Triton kernels run on tensors of `device`: CUDA, or any with Triton's interpreter (the CPU tests)."""
    return device.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"


def relative_max_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    """max |out - ref| / max |ref| (NaN when out has NaNs, which fails any `<=` check): how a tuner checks a
    candidate's output against its reference path's."""
    scale = ref.float().abs().max().clamp_min(1e-12)
    return ((out.float() - ref.float()).abs().max() / scale).item()


def fastest(candidates: Iterable[C], measure: Callable[[C], float], best: C, best_us: float = float("inf")
            ) -> tuple[C, list[tuple[C, float | None, str | None]]]:
    """The candidate `measure` times fastest (microseconds), starting from `best` at `best_us`, and every candidate's
    (candidate, microseconds or None, why not). A candidate that raises (a configuration this GPU or build cannot
    run: shared memory, registers) or is Rejected is skipped with the reason."""
    timings: list[tuple[C, float | None, str | None]] = []
    for cand in candidates:
        try:
            t = measure(cand)
        except Rejected as why:
            timings.append((cand, None, str(why)))
            continue
        except Exception as exc:  # noqa: BLE001 - see the docstring
            timings.append((cand, None, f"{type(exc).__name__}: {str(exc)[:120]}"))
            continue
        timings.append((cand, t, None))
        if t < best_us:
            best, best_us = cand, t
    return best, timings
