"""The model's element-wise producers — norms, residual adds, GELU, SwiGLU — as single functions that may
end in FP8 (`quantize=True`: e4m3 rows and per-row scales, an `FP8Act`, for an FP8 linear that follows).

On CUDA with Triton each is one kernel (`vlmserve.triton_fused`): eager PyTorch spends several passes
over the activations on an RMSNorm (measured: 0.8 ms for 12,888 x 4,096 tokens on an H200, more than the
0.6 ms of the GEMM after it). Elsewhere (CPU, and the CPU tests' reference) the plain-torch code below,
float32 inside, is the definition.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from vlmserve.kernel_choice import env_choice
from vlmserve.quant.fp8 import FP8Act, quantize_rows_reference
from vlmserve.quant.partials import Partials, as_tensor

_triton = None


def _kernels(x: torch.Tensor):
    """The Triton module when `x` lives on a CUDA device and Triton is importable, else None."""
    global _triton
    if not x.is_cuda:
        return None
    if _triton is None:
        try:
            from vlmserve import triton_fused
            _triton = triton_fused
        except ImportError:
            _triton = False
    return _triton or None


def _maybe_quantize(y: torch.Tensor, dtype: torch.dtype, quantize: bool):
    return quantize_rows_reference(y) if quantize else y.to(dtype)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float, quantize: bool = False):
    """RMSNorm(x) (mean of squares in float32, gain applied before the cast, as the official code does)."""
    k = _kernels(x)
    if k is not None:
        return k.rms_norm(x, weight, eps, quantize)
    y = weight * (x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + eps))
    return _maybe_quantize(y, x.dtype, quantize)


def add_rms_norm(x: torch.Tensor, y, weight: torch.Tensor, eps: float, quantize: bool = False):
    """(x + y, RMSNorm(x + y)): a pre-norm block's residual add and the norm after it. y may be a linear's split-K
    Partials (vlmserve.quant.partials), summed as it is read."""
    k = _kernels(x)
    if k is not None:
        return k.add_rms_norm(x, y, weight, eps, quantize)
    s = x + as_tensor(y)
    return s, rms_norm(s, weight, eps, quantize)


def add_layer_norm(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float,
                   quantize: bool = False):
    """x + LayerNorm(y) (a post-norm residual step); with `quantize`, (that, its FP8Act)."""
    k = _kernels(x)
    if k is not None:
        return k.add_layer_norm(x, y, weight, bias, eps, quantize)
    if not quantize:
        return x + F.layer_norm(y, (y.shape[-1],), weight, bias, eps)
    s = (x.float() + F.layer_norm(y.float(), (y.shape[-1],), weight.float(), bias.float(), eps)).to(x.dtype)
    return s, quantize_rows_reference(s)


def gelu(h: torch.Tensor, quantize: bool = False):
    """Exact (erf) GELU. Quantized on CUDA (FP8's fc2 input), the Triton kernel computes GELU's tanh form: within
    4.7e-4 of the erf form, far inside e4m3's steps, and a third of erf's instructions (triton_fused._op)."""
    k = _kernels(h)
    if k is not None and quantize:      # unquantized, F.gelu is one pass already
        return k.gelu(h, quantize)
    return quantize_rows_reference(F.gelu(h.float())) if quantize else F.gelu(h)


GELU_CHOICES = ("epilogue", "exact")


def vision_gelu_choice() -> str:
    """VLMSERVE_VISION_GELU's value: "epilogue" (the default) or "exact" (benches record it with their figures)."""
    return env_choice("VLMSERVE_VISION_GELU", GELU_CHOICES)


def linear_gelu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, out: torch.Tensor | None = None):
    """GELU(x @ weight.T + bias) for 2-D x, into `out` when given.

    On CUDA in bf16/fp16 the GELU is cuBLASLt's GEMM epilogue (`torch._addmm_activation`): the vision tower's fc1
    output (6,401 x 15,360 per image and layer) is then written once and never read back by a separate GELU
    kernel, which took 7% of the tower's GPU time on an H100 (bench/gpu_kernel_profile.py). That epilogue is GELU's
    tanh form (at most 4.7e-4 from the erf form) applied to the float32 accumulator, where the separate kernel
    applies the erf form to the product already rounded to bf16: against the exact function in float64, the
    epilogue is the closer of the two (relative error 1.7e-3 against 2.7e-3 at fc1's shape,
    tests/test_fused_gelu.py). VLMSERVE_VISION_GELU=exact keeps the separate erf GELU, the official code's kernels.
    Elsewhere (CPU, float32) it is the erf form."""
    if (x.is_cuda and bias is not None and x.dtype in (torch.float16, torch.bfloat16) and x.dim() == 2
            and vision_gelu_choice() == "epilogue"):
        if out is None:
            return torch._addmm_activation(bias, x, weight.t(), use_gelu=True)
        return torch._addmm_activation(bias, x, weight.t(), use_gelu=True, out=out)
    y = F.gelu(F.linear(x, weight, bias))
    if out is None:
        return y
    return out.copy_(y)


def linear_into(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, out: torch.Tensor) -> torch.Tensor:
    """x @ weight.T + bias written straight into `out` (rows of a larger result): no copy of a temporary."""
    if bias is None:
        return torch.mm(x, weight.t(), out=out)
    return torch.addmm(bias, x, weight.t(), out=out)


def swiglu(gate, up, quantize: bool = False):
    """silu(gate) * up; gate and up may be Partials (the two column halves of one split-K output)."""
    k = _kernels(gate.parts if isinstance(gate, Partials) else gate)
    if k is not None:
        return k.swiglu(gate, up, quantize)
    gate, up = as_tensor(gate), as_tensor(up)
    if quantize:
        return quantize_rows_reference(F.silu(gate.float()) * up.float())
    return F.silu(gate) * up


def quantize_rows(x: torch.Tensor) -> FP8Act:
    k = _kernels(x)
    return k.quantize_rows(x) if k is not None else quantize_rows_reference(x)
