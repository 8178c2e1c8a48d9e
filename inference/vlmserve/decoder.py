"""ChatGLM4 decoder blocks as the official GLM-4 code builds them: pre-RMSNorm, fused QKV with bias, grouped kv heads,
GLM rotary on half the head dims, SwiGLU MLP. Names follow ``transformer.encoder.*``."""
from __future__ import annotations

import torch
from torch import nn

from vlmserve.attention import AttentionBackend
from vlmserve.config import ModelConfig
from vlmserve.fused import add_rms_norm, rms_norm, swiglu
from vlmserve.quant.fp8 import takes_fp8
from vlmserve.quant.partials import as_tensor, leave_splits
from vlmserve.rotary import rotate_in_place


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(dim))

    def forward(self, x):
        return rms_norm(x, self.weight, self.eps)


class SelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.layer = layer
        self.n_heads, self.n_kv, self.head_dim = cfg.num_attention_heads, cfg.n_kv_heads, cfg.head_dim
        q_size, kv_size = self.n_heads * self.head_dim, self.n_kv * self.head_dim
        self.query_key_value = nn.Linear(cfg.hidden_size, q_size + 2 * kv_size, bias=cfg.add_qkv_bias)
        self.dense = nn.Linear(q_size, cfg.hidden_size, bias=False)

    def forward(self, x, cos_sin, attn: AttentionBackend):
        """x: [B, T, H], a tensor or (when query_key_value is FP8) its FP8Act."""
        B, T, _ = x.shape
        qkv = self.query_key_value(x)
        qk, v = qkv.split([(self.n_heads + self.n_kv) * self.head_dim, self.n_kv * self.head_dim], dim=-1)
        qk = qk.view(B, T, self.n_heads + self.n_kv, self.head_dim)
        # A backend that rotates q and k itself as its kernel reads them (the engine's fused decode attention) gets
        # them as projected; otherwise q and k are rotated here in one pass (a decode step is ~40 layers of small
        # kernels: their count matters)
        fused = getattr(attn, "rotates", False)
        if not fused:
            qk = rotate_in_place(qk, cos_sin)     # over this layer's own qkv output, where a kernel can
        q = qk[:, :, :self.n_heads].transpose(1, 2)
        k = qk[:, :, self.n_heads:].transpose(1, 2)
        v = v.view(B, T, self.n_kv, self.head_dim).transpose(1, 2)
        out = attn(self.layer, q, k, v, rotary=cos_sin) if fused else attn(self.layer, q, k, v)
        return leave_splits(self.dense, out.transpose(1, 2).reshape(B, T, -1))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.dense_h_to_4h = nn.Linear(cfg.hidden_size, 2 * cfg.ffn_hidden_size, bias=False)
        self.dense_4h_to_h = nn.Linear(cfg.ffn_hidden_size, cfg.hidden_size, bias=False)

    def forward(self, x):
        """The output may be split-K Partials (NF4 at decode sizes), which the next residual add + norm sums."""
        gate, up = leave_splits(self.dense_h_to_4h, x).chunk(2, dim=-1)
        # FP8: SwiGLU and the quantization of its output in one pass; NF4: SwiGLU sums the split-K partials
        return leave_splits(self.dense_4h_to_h, swiglu(gate, up, quantize=takes_fp8(self.dense_4h_to_h)))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, layer: int):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.layernorm_epsilon)
        self.self_attention = SelfAttention(cfg, layer)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.layernorm_epsilon)
        self.mlp = MLP(cfg)

    def forward(self, x, cos_sin, attn: AttentionBackend, carry: list | None = None):
        """With `carry` (the encoder's): the previous block's MLP output is taken from it and added to x by this
        block's input norm in the same kernel, and this block's MLP output is left in it for the next block or the
        final norm: one pass over the residual stream fewer per layer, the same values. Taken out of the list,
        not passed as an argument, so that no frame keeps it alive through this block. Without: x + MLP(...)."""
        norm1, norm2 = self.input_layernorm, self.post_attention_layernorm
        # FP8 linears get their input from the norm kernel already quantized (one pass, no bf16 copy)
        q1 = takes_fp8(self.self_attention.query_key_value)
        if carry:
            x, h = add_rms_norm(x, carry.pop(), norm1.weight, norm1.eps, quantize=q1)
        else:
            h = rms_norm(x, norm1.weight, norm1.eps, quantize=q1)
        a = self.self_attention(h, cos_sin, attn)
        x, h = add_rms_norm(x, a, norm2.weight, norm2.eps, quantize=takes_fp8(self.mlp.dense_h_to_4h))
        if carry is None:
            return x + as_tensor(self.mlp(h))
        carry.append(self.mlp(h))
        return x


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.layers = nn.ModuleList(Block(cfg, i) for i in range(cfg.num_layers))
        self.final_layernorm = RMSNorm(cfg.hidden_size, cfg.layernorm_epsilon)

    def forward(self, x, cos_sin, attn: AttentionBackend, trace: dict | None = None):
        # Layer inputs are kept only when traced: at full size they hold ~0.5 GiB through prefill.
        states = [] if trace is not None else None
        carry: list = []
        for layer in self.layers:
            if states is not None:
                states.append(x + as_tensor(carry[0]) if carry else x)  # the same rounding as the fused add
            x = layer(x, cos_sin, attn, carry)
        final = self.final_layernorm
        if carry:
            x, out = add_rms_norm(x, carry.pop(), final.weight, final.eps)
        else:
            out = final(x)
        if states is not None:
            trace["hidden_states"] = torch.stack(states + [x]).detach()
        return out


class Embedding(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.padded_vocab_size, cfg.hidden_size)
        self.rows_to: torch.device | None = None  # set by keep_on_host: where looked-up rows are sent

    def keep_on_host(self) -> None:
        """Moves the table to (pinned) host memory; a lookup gathers its rows there and copies only those to the
        device the table was on. At full size the table is 1.16 GiB (151,552 x 4,096 in bf16), 15% of the 4-bit
        model, while a decode step reads one row per sequence and a prefill a few dozen (image tokens come from
        the vision tower)."""
        w = self.word_embeddings.weight
        if w.device.type == "cpu":
            return
        self.rows_to = w.device
        host = w.detach().cpu()
        self.word_embeddings.weight = nn.Parameter(host.pin_memory() if torch.cuda.is_available() else host,
                                                   requires_grad=False)

    @property
    def on_host(self) -> bool:
        return self.rows_to is not None and self.word_embeddings.weight.device.type == "cpu"

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        """Embeddings of `ids` (any device) on the compute device; with the table on the host, the ids go to the
        host (a synchronisation when they are on the GPU: callers that loop give host ids)."""
        if not self.on_host:
            return self.word_embeddings(ids.to(self.word_embeddings.weight.device, non_blocking=True))
        table = self.word_embeddings.weight
        flat = ids.cpu().reshape(-1)
        # gathered straight into pinned memory, so the copy to the device is asynchronous and the rows move once
        rows = torch.empty((flat.numel(), table.shape[1]), dtype=table.dtype, pin_memory=torch.cuda.is_available())
        torch.index_select(table, 0, flat, out=rows)
        return rows.view(*ids.shape, table.shape[1]).to(self.rows_to, non_blocking=True)

    def forward(self, ids):
        return self.rows(ids)
