"""Next-token choice: greedy (temperature 0) or temperature + nucleus (top_p) sampling.

``temperature`` and ``top_p`` may be numbers or per-row tensors [B], so one call serves a batch
of requests with different settings; no host synchronisation happens here.
"""
from __future__ import annotations

import torch


def _per_row(x, B, device) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=torch.float32, device=device)
    return t.expand(B) if t.dim() == 0 else t


def sample(logits: torch.Tensor, temperature=0.0, top_p=1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """logits [B, V] -> ids [B] (int64)."""
    B = logits.shape[0]
    logits = logits.float()
    greedy_ids = logits.argmax(dim=-1)
    if isinstance(temperature, (int, float)) and temperature <= 0:
        return greedy_ids
    temp = _per_row(temperature, B, logits.device)
    p = _per_row(top_p, B, logits.device).clamp(0.0, 1.0)
    greedy = temp <= 0
    probs = torch.softmax(logits / torch.where(greedy, 1.0, temp)[:, None], dim=-1)
    sorted_p, order = probs.sort(dim=-1, descending=True)
    # keep the smallest prefix whose mass reaches top_p (always at least the top token)
    drop = (sorted_p.cumsum(dim=-1) - sorted_p) >= p[:, None]
    sorted_p = sorted_p.masked_fill(drop, 0.0)
    choice = torch.multinomial(sorted_p, 1, generator=generator)
    sampled = order.gather(-1, choice)[:, 0]
    return torch.where(greedy, greedy_ids, sampled)
