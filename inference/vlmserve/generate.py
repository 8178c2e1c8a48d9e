"""Simple batched generation: one prefill, then one token per step with the KV cache.

Stops a row at the model's end tokens (``<|endoftext|>``, ``<|user|>``, ``<|observation|>``);
without them GLM-4V keeps writing the next turn. Decode positions continue from each row's
last prompt position + 1 (the UNexpanded prompt length, see `ImageTokens` in model.py), not from
the spliced length.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from vlmserve.model import GLM4V
from vlmserve.sampling import sample


@dataclass
class Generation:
    ids: list[list[int]]                      # new ids per row, end token excluded
    finish_reasons: list[str]                 # "stop" (end token) or "length"
    step_logits: list[torch.Tensor] = field(default_factory=list)   # [B, V] per step, if asked


@torch.inference_mode()
def generate(model: GLM4V, input_ids: torch.Tensor, pixel_values=None, attention_mask=None,
             position_ids=None, max_new_tokens: int = 64, temperature=0.0, top_p=1.0,
             seed: int | None = None, eos_ids=None, keep_logits: bool = False) -> Generation:
    device = model.transformer.output_layer.weight.device
    input_ids = input_ids.to(device)
    eos = torch.tensor(sorted(eos_ids if eos_ids is not None else model.config.eos_token_ids), dtype=torch.long,
                       device=device)
    generator = None
    if seed is not None:
        generator = torch.Generator(device=device).manual_seed(seed)

    hidden, positions, cache = model.prefill(input_ids, pixel_values, attention_mask, position_ids)
    last_pos = positions[:, -1]               # left padding: the last column is real in every row
    logits = model.logits(hidden[:, -1])
    B = input_ids.shape[0]
    done = torch.zeros(B, dtype=torch.bool, device=device)
    out: list[torch.Tensor] = []
    step_logits = []
    for step in range(max_new_tokens):
        if keep_logits:
            step_logits.append(logits.float().cpu())
        nxt = sample(logits, temperature, top_p, generator)
        nxt = torch.where(done, model.config.pad_token_id, nxt)
        out.append(nxt)
        done |= torch.isin(nxt, eos)
        if step + 1 == max_new_tokens or bool(done.all()):
            break
        last_pos = last_pos + 1
        embeds = model.transformer.embedding(nxt[:, None])
        hidden = model.forward_embeds(embeds, last_pos[:, None], cache)
        logits = model.logits(hidden[:, -1])

    ids, reasons = [], []
    rows = torch.stack(out, dim=1).tolist() if out else [[] for _ in range(B)]
    eos_set = set(eos.tolist())
    for row in rows:
        cut = next((i for i, t in enumerate(row) if t in eos_set), None)
        ids.append(row if cut is None else row[:cut])
        reasons.append("length" if cut is None else "stop")
    return Generation(ids, reasons, step_logits)
