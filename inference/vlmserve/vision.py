"""EVA2-CLIP vision tower, 2x2 conv downsample and GLU projector of GLM-4V, as in the official
model code.

Module and parameter names follow the official state dict (``transformer.vision.*``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vlmserve.attention import full_attention
from vlmserve.config import ModelConfig
from vlmserve.fused import add_layer_norm, gelu, linear_gelu, linear_into, quantize_rows, swiglu
from vlmserve.kernel_choice import env_int
from vlmserve.quant.fp8 import FP8Linear, n_rows, rows_of, takes_fp8
from vlmserve.quant.linear import NF4Linear


class PatchEmbedding(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        v = cfg.vision
        self.proj = nn.Conv2d(v.in_channels, v.hidden_size, kernel_size=v.patch_size, stride=v.patch_size)
        self.cls_embedding = nn.Parameter(torch.empty(1, v.hidden_size))
        self.position_embedding = nn.Embedding(v.num_positions, v.hidden_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.proj(images).flatten(2).transpose(1, 2)            # [B, grid*grid, C], row-major
        cls = self.cls_embedding.expand(x.shape[0], -1, -1)
        x = torch.cat((cls, x), dim=1)
        return x + self.position_embedding.weight.unsqueeze(0)      # whole table: no interpolation


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        v = cfg.vision
        self.num_heads = v.num_heads
        self.query_key_value = nn.Linear(v.hidden_size, 3 * v.hidden_size)
        self.dense = nn.Linear(v.hidden_size, v.hidden_size)

    def forward(self, x) -> torch.Tensor:
        """x: [B, L, C], a tensor or (when query_key_value is FP8) its FP8Act."""
        B, L, _ = x.shape
        q, k, v = self.query_key_value(x).view(B, L, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        out = full_attention(q, k, v)                                # no mask, no causality
        return self.dense(out.transpose(1, 2).reshape(B, L, -1))


class MLP(nn.Module):
    # fc1's output is the tower's largest activation: 6,401 x 15,360 per 1120px image, 188 MiB in bf16. Tokens are
    # independent here, so a micro-batch goes through in equal chunks of at most `tokens_per_chunk` tokens (two for
    # the engine's four 1120px images), each chunk's result written straight into its rows of the output. Chunks of
    # 2,048 tokens cost bf16 serving 4.6% and FP8 1.6% of their images/s against these on an H100 (the GEMMs' partly
    # filled last waves of tiles; bench/vision_mlp_check.py --chunks, bench/results/gpu_session_2026-12-06c). 4-bit
    # weights keep 2,048-token chunks: they serve the small cards, where 0.3 GiB more activations cost KV slots and
    # a batch-1 peak held under 8 GiB. VLMSERVE_VISION_MLP_CHUNK sets the 16-bit and FP8 size (benches compare).
    tokens_per_chunk = env_int("VLMSERVE_VISION_MLP_CHUNK", 12816, 16, 1 << 20)
    nf4_tokens_per_chunk = 2048

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        v = cfg.vision
        self.fc1 = nn.Linear(v.hidden_size, v.intermediate_size)
        self.fc2 = nn.Linear(v.intermediate_size, v.hidden_size)

    def forward(self, x):
        """x: [..., C], a tensor or (when fc1 is FP8) its FP8Act."""
        shape = x.shape
        n = n_rows(x)
        flat = x if not isinstance(x, torch.Tensor) else x.reshape(-1, shape[-1])
        limit = self.chunk_tokens()
        if n <= limit:
            return self._chunk_mlp(whole=True)(flat, None).view(*shape[:-1], -1)
        mlp = self._chunk_mlp(whole=False)
        size = -(-n // -(-n // limit))
        if size % 16 and limit >= 16:
            # chunks start on 16-row boundaries, so that FP8's row scales of a chunk are an aligned view, not a copy
            size = min(-(-size // 16) * 16, limit // 16 * 16)
        out = None
        for i in range(0, n, size):
            rows = rows_of(flat, i, min(i + size, n))
            if out is None:
                y = mlp(rows, None)
                out = y.new_empty(n, y.shape[-1])
                out[:size] = y
            else:
                mlp(rows, out[i:i + size])
        return out.view(*shape[:-1], out.shape[-1])

    def chunk_tokens(self) -> int:
        """The most tokens one chunk of fc1's output holds for these weights."""
        return self.nf4_tokens_per_chunk if isinstance(self.fc1, NF4Linear) else self.tokens_per_chunk

    def _chunk_mlp(self, whole: bool):
        """(rows, out or None) -> fc2(GELU(fc1(rows))), written into `out` when given. 16-bit weights (the model's
        own, or for a chunked input 4-bit ones dequantized once here) run as two GEMMs with GELU in the first one's
        epilogue (fused.linear_gelu); FP8 layers take GELU and fc2's input quantization in one pass over fc1's
        output, and a short input to 4-bit layers goes through their own kernels."""
        if not whole and isinstance(self.fc1, NF4Linear) and isinstance(self.fc2, NF4Linear):
            return self._dense_mlp()
        if type(self.fc1) is nn.Linear and type(self.fc2) is nn.Linear:
            return self._gemm_mlp(self.fc1.weight, self.fc1.bias, self.fc2.weight, self.fc2.bias, self.fc1.weight.dtype)

        def mlp(h, out):
            g = gelu(self.fc1(h), quantize=takes_fp8(self.fc2))
            if out is not None and isinstance(self.fc2, FP8Linear):
                return self.fc2(g, out=out)
            y = self.fc2(g)
            return y if out is None else out.copy_(y)

        return mlp

    def _dense_mlp(self):
        """The MLP on the weights dequantized once, for 4-bit fc1 / fc2: called chunk by chunk
        they would dequantize each weight once per chunk (4x per 1120px image, at every layer). The chunks are
        the 16-bit path's: the two 16-bit weights (110 MB at full size) fit beside them since the 4-bit model
        keeps its embedding table in host memory (1.16 GiB; weights.place_embeddings). The 512-row chunks used
        before, for the 8 GiB budget, give fc2's GEMM 4 x 14 output tiles of 128 x 128: under half a wave on an
        H200's 132 SMs."""
        return self._gemm_mlp(self.fc1.dense_weight(), self.fc1.bias, self.fc2.dense_weight(), self.fc2.bias,
                              self.fc1.compute_dtype)

    @staticmethod
    def _gemm_mlp(w1, b1, w2, b2, dtype):
        def mlp(h, out):
            y_dtype = h.dtype
            h = linear_gelu(h.to(dtype), w1, b1)
            if out is not None and out.dtype == dtype:
                return linear_into(h, w2, b2, out)
            y = F.linear(h, w2, b2)
            y = y if y.dtype == y_dtype else y.to(y_dtype)
            return y if out is None else out.copy_(y)

        return mlp


class TransformerLayer(nn.Module):
    """Norm on the branch output, not pre-norm: x + LN(Attn(x)), then x + LN(MLP(x))."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        v = cfg.vision
        self.input_layernorm = nn.LayerNorm(v.hidden_size, eps=v.layer_norm_eps)
        self.attention = Attention(cfg)
        self.mlp = MLP(cfg)
        self.post_attention_layernorm = nn.LayerNorm(v.hidden_size, eps=v.layer_norm_eps)

    def forward(self, x, xq=None, quantize_out: bool = False):
        """Returns (x, its FP8Act or None). `xq` is x in FP8 when the layer's qkv takes it; with
        `quantize_out` the output comes with its FP8 copy for the next layer (one fused pass each)."""
        x = self._add_norm(x, self.attention(x if xq is None else xq), self.input_layernorm,
                           takes_fp8(self.mlp.fc1))
        x, xq = x if isinstance(x, tuple) else (x, None)
        out = self._add_norm(x, self.mlp(x if xq is None else xq), self.post_attention_layernorm, quantize_out)
        return out if isinstance(out, tuple) else (out, None)

    @staticmethod
    def _add_norm(x, branch, norm: nn.LayerNorm, quantize: bool):
        return add_layer_norm(x, branch, norm.weight, norm.bias, norm.eps, quantize)


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.layers = nn.ModuleList(TransformerLayer(cfg) for _ in range(cfg.vision.num_hidden_layers))

    def forward(self, x):
        xq = None
        for i, layer in enumerate(self.layers):
            nxt = self.layers[i + 1] if i + 1 < len(self.layers) else None
            x, xq = layer(x, xq, quantize_out=nxt is not None and takes_fp8(nxt.attention.query_key_value))
        return x


class GLU(nn.Module):
    """Projector: linear, LayerNorm (PyTorch default eps 1e-5, not from the config), GELU, SwiGLU."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        h, f = cfg.hidden_size, cfg.ffn_hidden_size
        self.linear_proj = nn.Linear(h, h, bias=False)
        self.norm1 = nn.LayerNorm(h)
        self.gate_proj = nn.Linear(h, f, bias=False)
        self.dense_h_to_4h = nn.Linear(h, f, bias=False)
        self.dense_4h_to_h = nn.Linear(f, h, bias=False)

    def forward(self, x):
        x = F.gelu(self.norm1(self.linear_proj(x)))
        if takes_fp8(self.gate_proj) and takes_fp8(self.dense_h_to_4h):
            x = quantize_rows(x)            # once for both
        return self.dense_4h_to_h(swiglu(self.gate_proj(x), self.dense_h_to_4h(x),
                                         quantize=takes_fp8(self.dense_4h_to_h)))


class VisionTower(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        v = cfg.vision
        self.image_size = v.image_size
        self.scaling_factor = v.scaling_factor
        self.patch_embedding = PatchEmbedding(cfg)
        self.transformer = Transformer(cfg)
        self.conv = nn.Conv2d(v.hidden_size, cfg.hidden_size, kernel_size=2, stride=2)
        self.linear_proj = GLU(cfg)
        self.boi = nn.Parameter(torch.empty(1, 1, cfg.hidden_size))
        self.eoi = nn.Parameter(torch.empty(1, 1, cfg.hidden_size))

    @property
    def input_weight(self) -> torch.Tensor:
        """The first weight the image meets (a conv: never quantized), so its dtype/device is the
        tower's compute dtype/device."""
        return self.patch_embedding.proj.weight

    def forward(self, images: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
        """images [B, 3, S, S] (already on the tower's device/dtype) -> [B, n_img + 2, hidden]."""
        if images.dim() != 4 or images.shape[1:] != (3, self.image_size, self.image_size):
            raise ValueError(f"pixel_values must be [B, 3, {self.image_size}, {self.image_size}], "
                             f"got {list(images.shape)}")
        x = self.patch_embedding(images)
        _record(trace, "vision_patch_embed", x)
        x = self.transformer(x)
        _record(trace, "vision_vit_out", x)
        x = x[:, 1:]                                                 # drop the class token
        B, n, C = x.shape
        grid = self.image_size // self.patch_embedding.proj.stride[0]
        x = self.conv(x.view(B, grid, grid, C).permute(0, 3, 1, 2))
        _record(trace, "vision_conv_out", x)
        x = self.linear_proj(x.flatten(2).transpose(1, 2))
        _record(trace, "vision_glu_out", x)
        x = torch.cat((self.boi.expand(B, -1, -1), x, self.eoi.expand(B, -1, -1)), dim=1)
        return x / self.scaling_factor


def _record(trace, name, x):
    if trace is not None:
        trace[name] = x.detach()
