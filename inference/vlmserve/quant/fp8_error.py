"""How far an FP8 model's answers are from the 16-bit model's on the same inputs.

Used by the CPU test (tiny fixtures, FP8 emulated) and the GPU benchmark (full size, random weights).
"""
from __future__ import annotations

import torch

from vlmserve.generate import generate


@torch.inference_mode()
def compare(reference, quantized, input_ids: torch.Tensor, pixel_values: torch.Tensor | None,
            new_tokens: int = 16) -> dict:
    """Logits relative error (Frobenius norm over every prompt position, float32), top-1 agreement at
    those positions, and greedy agreement: the share of `new_tokens` greedy steps (end tokens ignored)
    that both models take identically, counted up to the first difference per row."""
    ref = reference(input_ids, pixel_values).float()
    got = quantized(input_ids, pixel_values).float()
    rel = float((got - ref).norm() / ref.norm())
    top1 = float((got.argmax(-1) == ref.argmax(-1)).float().mean())
    g_ref = generate(reference, input_ids, pixel_values, max_new_tokens=new_tokens, eos_ids=())
    g_got = generate(quantized, input_ids, pixel_values, max_new_tokens=new_tokens, eos_ids=())
    same = 0
    for a, b in zip(g_ref.ids, g_got.ids):
        n = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        same += n
    total = sum(len(a) for a in g_ref.ids)
    return {"logits_rel_err": rel, "top1_agreement": top1, "greedy_agreement": same / max(total, 1),
            "greedy_tokens": total}
