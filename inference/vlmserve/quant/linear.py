"""NF4Linear: a drop-in replacement for nn.Linear whose weight is stored in bitsandbytes' NF4 layout.

The packed weight and its quant state are buffers, not parameters: `module.parameters()` yields only
the (compute-dtype) bias, so code that reads a tower's dtype from its parameters still sees a float type.
Input of another dtype is cast to the compute dtype and the output cast back, so mixed-precision
towers do not clash.

forward: on CUDA (K % 64 == 0) the fused Triton kernels of triton_nf4 (imported on first use, so machines
without Triton never import it); elsewhere dequantize to the compute dtype and F.linear.

On its first use on a GPU that runs the Gluon kernel (triton_nf4.kernel_layout_fits) the layer permutes its bytes
into the kernel layout (nf4_layout) in place: one copy of the weight either way (`kernel_layout` says which).
Everything that hands the weight out (nf4_weight, dequantize, bnb_format's export) gives bitsandbytes' layout back.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import nf4_layout
from .nf4 import BLOCKSIZE, NestedAbsmax, NF4Weight, quantize_nf4

_triton = None
_triton_failed: str | None = None


def _kernels():
    """The Triton module, or None when Triton is not installed."""
    global _triton, _triton_failed
    if _triton is None and _triton_failed is None:
        try:
            from . import triton_nf4

            _triton = triton_nf4
        except ImportError as exc:  # CPU-only installs have no triton
            _triton_failed = str(exc)
    return _triton


class NF4Linear(nn.Module):
    def __init__(self, weight: NF4Weight, bias: Tensor | None, compute_dtype: torch.dtype):
        super().__init__()
        if len(weight.shape) != 2:
            raise ValueError(f"NF4Linear needs a 2-D weight, got shape {weight.shape}")
        self.out_features, self.in_features = weight.shape
        self.compute_dtype = compute_dtype
        self.blocksize = weight.blocksize
        dev = weight.packed.device
        self.register_buffer("packed", weight.packed.reshape(-1).contiguous())
        self.register_buffer("code", weight.code.to(device=dev, dtype=torch.float32).contiguous())
        nested = weight.nested
        self.double_quant = nested is not None
        if nested is None:
            self.register_buffer("absmax", weight.absmax.to(torch.float32).reshape(-1).contiguous())
        else:
            self.register_buffer("absmax_q", nested.q.reshape(-1).contiguous())
            self.register_buffer("nested_absmax", nested.nested_absmax.to(torch.float32).reshape(-1).contiguous())
            self.register_buffer("nested_code", nested.code.to(device=dev, dtype=torch.float32).contiguous())
            self.nested_offset = float(nested.offset)
            self.nested_blocksize = nested.blocksize
        self.bias = nn.Parameter(bias.detach().to(compute_dtype), requires_grad=False) if bias is not None else None
        self.kernel_layout = False
        self._check_sizes()

    def _check_sizes(self) -> None:
        n = self.out_features * self.in_features
        n_blocks = -(-n // self.blocksize)
        if self.packed.dtype != torch.uint8 or self.packed.numel() != -(-n // 2):
            raise ValueError(
                f"packed weight must be uint8 with {-(-n // 2)} bytes for [{self.out_features}, {self.in_features}], "
                f"got {self.packed.dtype} with {self.packed.numel()}"
            )
        if self.code.numel() != 16:
            raise ValueError(f"the 4-bit code book needs 16 values, got {self.code.numel()}")
        got = self.absmax_q.numel() if self.double_quant else self.absmax.numel()
        if got != n_blocks:
            raise ValueError(f"absmax needs {n_blocks} values (blocksize {self.blocksize}), got {got}")
        if self.bias is not None and self.bias.shape != (self.out_features,):
            raise ValueError(f"bias must be [{self.out_features}], got {tuple(self.bias.shape)}")

    @classmethod
    def from_weight(cls, weight: Tensor, bias: Tensor | None, compute_dtype: torch.dtype,
                    double_quant: bool | None = None, blocksize: int = BLOCKSIZE) -> "NF4Linear":
        """Quantize a [out, in] float weight (on its device; nothing else is allocated there).

        double_quant=None picks the default: on for 16-bit compute dtypes (serving: float32 absmax would
        cost 0.77 GiB at full size and break the 8 GiB budget; the 8-bit absmax costs 0.19 GiB), off for
        float32 (the reference path, which the golden NF4 outputs are defined with)."""
        if weight.dim() != 2:
            raise ValueError(f"expected a 2-D linear weight, got shape {tuple(weight.shape)}")
        if double_quant is None:
            double_quant = compute_dtype != torch.float32
        return cls(quantize_nf4(weight, blocksize=blocksize, double_quant=double_quant), bias, compute_dtype)

    @classmethod
    def from_quantized(cls, packed: Tensor, absmax: Tensor, shape: tuple[int, int], bias: Tensor | None,
                       compute_dtype: torch.dtype, code: Tensor | None = None, blocksize: int = BLOCKSIZE,
                       nested_absmax: Tensor | None = None, nested_code: Tensor | None = None,
                       nested_offset: float = 0.0, nested_blocksize: int = 256) -> "NF4Linear":
        """From bnb-format tensors: packed uint8 codes, absmax (float32, or uint8 with nested_* when double
        quantized), the code book (defaults to NF4)."""
        from .nf4 import nf4_code

        code = nf4_code(packed.device) if code is None else code
        nested = None
        if nested_absmax is not None:
            if nested_code is None:
                raise ValueError("double-quantized absmax needs nested_code (the 8-bit code book)")
            nested = NestedAbsmax(q=absmax.reshape(-1), nested_absmax=nested_absmax.reshape(-1).float(),
                                  code=nested_code.reshape(-1).float(), offset=float(nested_offset),
                                  blocksize=nested_blocksize)
            absmax = None
        elif absmax.dtype == torch.uint8:
            raise ValueError("absmax is uint8 (double quantized) but nested_absmax is missing")
        w = NF4Weight(packed=packed.reshape(-1), absmax=None if absmax is None else absmax.reshape(-1).float(),
                      shape=tuple(shape), code=code.reshape(-1).float(), blocksize=blocksize, nested=nested)
        return cls(w, bias, compute_dtype)

    @property
    def weight(self) -> Tensor:
        """The packed uint8 codes (like bitsandbytes' Linear4bit.weight), so `.weight.device` keeps working;
        use dequantize() for values."""
        return self.packed

    def nf4_weight(self) -> NF4Weight:
        """The weight in bitsandbytes' layout (a permuted copy when the buffers hold the kernel layout)."""
        packed, scales = self.packed, self.absmax_q if self.double_quant else self.absmax
        if self.kernel_layout:
            packed, scales = nf4_layout.to_bnb_layout(packed, scales, self.out_features, self.in_features)
        nested = None
        if self.double_quant:
            nested = NestedAbsmax(q=scales, nested_absmax=self.nested_absmax, code=self.nested_code,
                                  offset=self.nested_offset, blocksize=self.nested_blocksize)
        return NF4Weight(packed=packed, absmax=None if self.double_quant else scales,
                         shape=(self.out_features, self.in_features), code=self.code,
                         blocksize=self.blocksize, nested=nested)

    def dequantize(self, dtype: torch.dtype | None = None) -> Tensor:
        return self.nf4_weight().dequantize(dtype or self.compute_dtype)

    def dense_weight(self) -> Tensor:
        """The whole weight in the compute dtype, made in one pass (the Triton dequantizer on the GPU, which
        writes nothing but the result; torch elsewhere). For a caller that multiplies several inputs by the
        same weight in a row and would otherwise pay one dequantization per call."""
        if self.packed.is_cuda and self.uses_kernel(self.packed):
            out = torch.empty((self.out_features, self.in_features), dtype=self.compute_dtype,
                              device=self.packed.device)
            _kernels().dequantize_rows(self._operand(), 0, self.out_features, out)
            return out
        return self.dequantize(self.compute_dtype)

    def _apply(self, fn, recurse=True):
        self._op = None  # buffers may move: rebuild the kernel operand on next use
        return super()._apply(fn, recurse)

    def _operand(self):
        op = self.__dict__.get("_op")
        if op is None:
            op = self._op = self._make_operand()
        return op

    def _make_operand(self):
        k = _kernels()
        if not self.kernel_layout and k.kernel_layout_fits(self.out_features, self.in_features, self.compute_dtype,
                                                           self.packed.device):
            self._to_kernel_layout()
        if self.double_quant:
            return k.NF4Operand(packed=self.packed, code=self.code, n=self.out_features, k=self.in_features,
                                qabs=self.absmax_q, code2=self.nested_code, nested=self.nested_absmax,
                                offset=self.nested_offset, kernel_layout=self.kernel_layout)
        return k.NF4Operand(packed=self.packed, code=self.code, n=self.out_features, k=self.in_features,
                            absmax=self.absmax, kernel_layout=self.kernel_layout)

    def _to_kernel_layout(self) -> None:
        """The buffers permuted in place (the old ones freed as the new ones are made: one layer's worth extra)."""
        name = "absmax_q" if self.double_quant else "absmax"
        packed, scales = nf4_layout.to_kernel_layout(self.packed, getattr(self, name), self.out_features,
                                                     self.in_features)
        self.packed = packed
        setattr(self, name, scales)
        self.kernel_layout = True

    def uses_kernel(self, x: Tensor) -> bool:
        if not x.is_cuda or self.double_quant and self.nested_blocksize != 256:
            return False
        k = _kernels()
        return k is not None and k.supported(self.in_features, self.blocksize)

    def forward(self, x: Tensor, leave_splits: bool = False) -> Tensor:
        """leave_splits: a kernel that splits K may return its partial sums unsummed (a quant.partials.Partials, in
        the compute dtype), for a consumer that adds them up as it reads them (quant.partials.leave_splits)."""
        in_dtype = x.dtype
        if x.dtype != self.compute_dtype:
            x = x.to(self.compute_dtype)
        lead = x.shape[:-1]
        if self.uses_kernel(x):
            y = _kernels().nf4_matmul(x.reshape(-1, self.in_features), self._operand(), self.bias,
                                      leave_splits=leave_splits and in_dtype == self.compute_dtype)
            y = y.view(*lead, self.out_features)   # a Partials only in the compute dtype: returned as it is
        else:
            y = F.linear(x, self.dequantize(self.compute_dtype), self.bias)
        return y if y.dtype == in_dtype else y.to(in_dtype)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
                f"nf4 blocksize={self.blocksize}, double_quant={self.double_quant}, compute_dtype={self.compute_dtype}, "
                f"kernel_layout={self.kernel_layout}")


def prepare_nf4(model: nn.Module) -> int:
    """Readies the model's CUDA NF4 layers for the kernels now: their bytes permuted into the kernel layout where it
    applies, and the dequantization scratch (vlmserve.quant.chunked) allocated, so that a memory plan made next
    counts both instead of meeting them at the first forward. Returns the scratch's bytes (0 without NF4 layers on
    CUDA)."""
    from . import chunked

    layers = [m for m in model.modules() if isinstance(m, NF4Linear) and m.packed.is_cuda]
    before = sum(lin.kernel_layout for lin in layers)
    for lin in layers:
        if lin.uses_kernel(lin.packed):
            lin._operand()
    if sum(lin.kernel_layout for lin in layers) > before:
        torch.cuda.empty_cache()   # the bitsandbytes-order buffers, freed layer by layer, back to the card
    return chunked.scratch(layers[0].packed.device).numel() if layers else 0
