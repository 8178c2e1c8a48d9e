"""The engine's memory plan for a capped card: every byte of the cap accounted for, the KV cache in what the
weights, activations and caches leave, and clear errors when nothing fits."""
from __future__ import annotations

import pytest

from vlmserve.config import glm4v_9b
from vlmserve.engine import memory_plan as mp
from vlmserve.engine.kv_cache import SlotKVCache

GIB = 2**30


def glm_plan(card_gib: float, weights_gib: float, **over) -> mp.MemoryPlan:
    """GLM-4V-9B (40 layers, 2 kv heads x 128, bf16 KV) with the 16 GB bench mode's engine settings."""
    import torch

    cfg = glm4v_9b()
    per_token = SlotKVCache.bytes_per_token(cfg.num_layers, cfg.n_kv_heads, cfg.head_dim, torch.bfloat16)
    kw = dict(card_bytes=int(card_gib * GIB), context_bytes=int(0.55 * GIB), weights_bytes=int(weights_gib * GIB),
              kv_bytes_per_token=per_token, slot_len=2048, max_slots=96, vision_batch=2, prefill_tokens=4096,
              prefix_entries=4, prefix_len=cfg.n_vision_embeds + 64, image_entries=8,
              image_bytes=cfg.n_vision_embeds * cfg.hidden_size * 2)
    kw.update(over)
    return mp.plan_memory(**kw)


def test_nf4_on_a_16_gib_card_fits_slots_and_accounts_for_every_byte():
    plan = glm_plan(16, 7.7)
    assert plan.kv_budget_tokens == plan.slots * 2048
    assert 20 <= plan.slots < 96                           # what 16 GiB leaves after 7.7 GiB of NF4 weights
    parts = (plan.weights + plan.activations + plan.decode + plan.fragmentation + plan.prefix_store
             + plan.image_cache + plan.kv)
    assert parts + plan.unplanned == plan.cap
    assert 0 <= plan.unplanned < 2048 * 40960 + mp.DECODE_PER_ROW   # less than one more slot
    assert plan.cap == int(16 * GIB) - int(0.55 * GIB) - int(0.25 * GIB)
    assert "KV cache" in plan.table() and f"{plan.slots} slots" in plan.table()


def test_more_memory_more_slots_up_to_max_and_bigger_micro_batches_fewer():
    small, big = glm_plan(16, 7.7), glm_plan(24, 7.7)
    assert big.slots > small.slots
    assert glm_plan(80, 7.7).slots == 96                   # capped by max_slots
    assert glm_plan(16, 7.7, vision_batch=8, prefill_tokens=16384).slots < small.slots


def test_bf16_weights_do_not_fit_a_16_gib_card():
    with pytest.raises(mp.PlanError, match="no KV slot fits.*weights 17"):
        glm_plan(16, 17.5)


@pytest.mark.parametrize("field,value,match", [
    ("card_bytes", 0, "card_bytes must be positive"),
    ("slot_len", -1, "slot_len must be positive"),
    ("weights_bytes", -5, "weights_bytes must not be negative"),
    ("context_bytes", 20 * GIB, "leaves nothing after the CUDA context"),
])
def test_bad_inputs_are_refused_clearly(field, value, match):
    with pytest.raises(mp.PlanError, match=match):
        glm_plan(16, 7.7, **{field: value})
