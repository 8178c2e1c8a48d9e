"""FP8 (e4m3) linear layers with per-output-channel weight scales and per-token activation scales.

The product is `torch._scaled_mm` with row-wise scales on GPUs that have FP8 matrix units (compute
capability 8.9+); the activations reach it already quantized by the op that produced them (the norm,
GELU or SwiGLU of `vlmserve.fused`, one kernel that writes e4m3 and the row scale), so no separate
pass over the activations is paid on the hot paths. Everywhere else (CPU, older GPUs) the same numbers
are emulated: quantize, dequantize in float32, multiply in float32, so tests in CI see FP8's error.

An activation in FP8 travels as `FP8Act` (e4m3 rows, one float32 scale per row, the logical shape);
`FP8Linear` takes one of those or a plain tensor, which it quantizes itself.
"""
from __future__ import annotations

import functools
import math

import torch
from torch import nn

E4M3 = torch.float8_e4m3fn
E4M3_MAX = 448.0
# A row of zeros gets this scale instead of 0, so dividing by it is safe and dequantizing gives zeros.
MIN_SCALE = 1e-12


class FP8Act:
    """Activation rows in e4m3 with one scale each: value = data.float() * scale."""

    __slots__ = ("data", "scale", "shape")

    def __init__(self, data: torch.Tensor, scale: torch.Tensor, shape: tuple[int, ...]):
        self.data, self.scale, self.shape = data, scale, tuple(shape)   # data [M, K], scale [M, 1] float32

    def rows(self, start: int, stop: int) -> "FP8Act":
        # cuBLASLt refuses scale pointers that are not 16-byte aligned (CUBLAS_STATUS_NOT_SUPPORTED on the H200): a
        # view of the scales is kept where it starts on a 16-byte boundary (callers chunk by multiples of 4 rows),
        # else they are copied.
        scale = self.scale[start:stop]
        if scale.data_ptr() % 16:
            scale = scale.clone()
        return FP8Act(self.data[start:stop], scale, (stop - start, self.shape[-1]))

    def dequantize(self, dtype=torch.float32) -> torch.Tensor:
        return (self.data.float() * self.scale).to(dtype).view(self.shape)


def quantize_rows_reference(x: torch.Tensor) -> FP8Act:
    """Per-row (per-token) e4m3 quantization in float32 over the last dimension."""
    flat = x.reshape(-1, x.shape[-1]).float()
    scale = (flat.abs().amax(dim=-1, keepdim=True) / E4M3_MAX).clamp(min=MIN_SCALE)
    data = (flat / scale).clamp(-E4M3_MAX, E4M3_MAX).to(E4M3)
    return FP8Act(data, scale, tuple(x.shape))


def quantize_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[N, K] -> (e4m3 [N, K], float32 scale [N]): one scale per output channel."""
    q = quantize_rows_reference(weight)
    return q.data, q.scale[:, 0].contiguous()


@functools.lru_cache(maxsize=None)
def fp8_matmul_supported(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 9)


FEW_ROWS = 128   # up to this many rows (decode steps) the split-K kernel competes with cuBLAS (quant.triton_fp8)

_BIAS_IN_GEMM = [True]    # until a PyTorch build refuses a bias with row-wise scales


def _scaled_mm(x: FP8Act, weight: torch.Tensor, scale_row: torch.Tensor, bias, out_dtype,
               out: torch.Tensor | None = None) -> torch.Tensor:
    into = {} if out is None else {"out": out}
    if bias is not None and _BIAS_IN_GEMM[0]:
        try:
            return torch._scaled_mm(x.data, weight.t(), scale_a=x.scale, scale_b=scale_row, bias=bias,
                                    out_dtype=out_dtype, **into)
        except RuntimeError:
            _BIAS_IN_GEMM[0] = False
    y = torch._scaled_mm(x.data, weight.t(), scale_a=x.scale, scale_b=scale_row, out_dtype=out_dtype, **into)
    return y if bias is None else y.add_(bias)


# ---- the layer -------------------------------------------------------------------------------------
class FP8Linear(nn.Module):
    takes_fp8 = True    # producers may hand it an FP8Act

    def __init__(self, weight: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor | None,
                 compute_dtype: torch.dtype):
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.register_buffer("weight", weight)            # e4m3 [N, K]
        self.register_buffer("weight_scale", scale)       # float32 [N]
        self.bias = None if bias is None else nn.Parameter(bias.to(compute_dtype), requires_grad=False)
        self.compute_dtype = compute_dtype
        self._scale_row = scale.view(1, -1)

    @classmethod
    def from_weight(cls, weight: torch.Tensor, bias: torch.Tensor | None = None,
                    compute_dtype: torch.dtype = torch.bfloat16) -> "FP8Linear":
        if weight.shape[0] % 16 or weight.shape[1] % 16:
            raise ValueError(f"FP8 needs both weight dimensions divisible by 16, got {list(weight.shape)}")
        if weight.is_cuda and not fp8_matmul_supported(weight.device):
            # the float32 emulation would dequantize every weight on every call: far slower than bf16
            raise ValueError(f"--quant fp8 needs a GPU with FP8 matrix units (compute capability 8.9+: Ada, "
                             f"Hopper); {torch.cuda.get_device_name(weight.device)} has none (use none or nf4)")
        q, s = quantize_weight(weight)
        return cls(q, s, bias, compute_dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, e4m3, bias={self.bias is not None}"

    def forward(self, x, out: torch.Tensor | None = None) -> torch.Tensor:
        """x: a tensor or an FP8Act; `out`: 2-D rows (in the compute dtype) to write the result into, for a
        caller that assembles a larger result chunk by chunk."""
        if not isinstance(x, FP8Act):
            from vlmserve.fused import quantize_rows
            x = quantize_rows(x)
        lead = x.shape[:-1]
        if fp8_matmul_supported(x.data.device):
            y = (self._few_rows(x) if out is None and x.data.shape[0] <= FEW_ROWS else None)
            if y is None:
                y = _scaled_mm(x, self.weight, self._scale_row, self.bias, self.compute_dtype, out)
        else:
            y = (x.data.float() * x.scale) @ (self.weight.float() * self.weight_scale[:, None]).t()
            if self.bias is not None:
                y = y + self.bias.float()
            y = y.to(self.compute_dtype) if out is None else out.copy_(y)
        return y if out is not None else y.view(*lead, self.out_features)

    def _few_rows(self, x: FP8Act) -> torch.Tensor | None:
        """A decode step's rows through the split-K kernel when it was timed faster than cuBLAS for this shape
        (quant.triton_fp8); None: cuBLAS."""
        from vlmserve.quant import triton_fp8

        def cublas():
            return _scaled_mm(x, self.weight, self._scale_row, self.bias, self.compute_dtype)

        cfg = triton_fp8.choose(x.data, x.scale, self.weight, self.weight_scale, self.bias, self.compute_dtype, cublas)
        if cfg is None:
            return None
        out = torch.empty((x.data.shape[0], self.out_features), device=x.data.device, dtype=self.compute_dtype)
        return triton_fp8.launch(x.data, x.scale, self.weight, self.weight_scale, self.bias, out, cfg)

    def _apply(self, fn, recurse=True):
        # Devices move, dtypes stay: `model.to(torch.bfloat16)` would otherwise widen the e4m3 weight
        # and round the float32 scales (float8 counts as a floating-point dtype to PyTorch).
        def move_only(t):
            return t.to(fn(torch.empty(0, dtype=t.dtype, device=t.device)).device)
        super()._apply(move_only, recurse)
        self._scale_row = self.weight_scale.view(1, -1)
        return self


# Stay bf16: the output layer (the logits are the answer; vLLM's FP8 checkpoints keep it too; a small
# share of the work) and the attention output projections, which measured slower in FP8 with their input
# quantization than in bf16 on an H200 (vision 0.93x at 4 images; decoder 0.56x at a 64-row decode step,
# where it outweighs its 1.29x in prefill) — bench/results/fp8_check.json.
KEEP_16BIT = ("output_layer", "attention.dense", "self_attention.dense")


def prepare_fp8(model: nn.Module) -> bool:
    """For a serving engine: its decode-sized FP8 matmuls are timed on cuBLAS and the split-K kernel
    (quant.triton_fp8) and run on the faster. True when the model has FP8 layers on a GPU with FP8 units."""
    if not any(isinstance(m, FP8Linear) and fp8_matmul_supported(m.weight.device) for m in model.modules()):
        return False
    from vlmserve.quant import triton_fp8
    triton_fp8.TUNING[0] = True
    return True


def should_quantize_fp8(param_name: str, keep_16bit=()) -> bool:
    """The NF4 policy's linear weights (vision tower, projector, decoder) less KEEP_16BIT."""
    from vlmserve.quant.policy import should_quantize
    return should_quantize(param_name, tuple(keep_16bit) + KEEP_16BIT)


def takes_fp8(module) -> bool:
    """Whether the op producing `module`'s input should hand it over quantized (an FP8Act)."""
    return getattr(module, "takes_fp8", False)


def rows_of(x, start: int, stop: int):
    """Rows start..stop of a flattened [M, K] activation, tensor or FP8Act."""
    return x.rows(start, stop) if isinstance(x, FP8Act) else x[start:stop]


def n_rows(x) -> int:
    return math.prod(x.shape[:-1])
