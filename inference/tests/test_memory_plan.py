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


# ---- the engine's rule: the plan sized from its own config -------------------------------------------------
def _engine_plan(card_gib: float, weights_gib: float, config=None, dtype=None):
    import torch

    from vlmserve.engine import EngineConfig

    memory = mp.DeviceMemory(card_bytes=int(card_gib * GIB), context_bytes=int(0.55 * GIB),
                             weights_bytes=int(weights_gib * GIB))
    return mp.engine_plan(glm4v_9b(), config or EngineConfig(), dtype or torch.bfloat16, memory)


def test_engine_plan_takes_every_size_from_the_engine_config():
    from vlmserve.engine import EngineConfig

    cfg = glm4v_9b()
    per_token = 2 * cfg.num_layers * cfg.n_kv_heads * cfg.head_dim * 2          # K and V, bf16
    config = EngineConfig(max_batch=40, slot_len=3000, vision_batch=3, prefill_tokens=5000,
                          prefix_cache_entries=5, image_cache_entries=7)
    plan = _engine_plan(40, 20, config)
    assert plan.slot_len == 3000 and plan.slots == 40                           # 40 GiB holds every slot asked for
    assert plan.activations == 3 * mp.VISION_PER_IMAGE + 5000 * mp.PREFILL_PER_TOKEN + mp.FIXED_RESERVE
    assert plan.prefix_store == 5 * (cfg.n_vision_embeds + mp.PREFIX_ROOM) * per_token
    assert plan.image_cache == 7 * cfg.n_vision_embeds * cfg.hidden_size * 2
    assert plan.kv == 40 * 3000 * per_token and plan.decode == 40 * mp.DECODE_PER_ROW
    assert plan.weights == 20 * GIB and plan.cap == 40 * GIB - int(0.55 * GIB) - mp.MARGIN


def test_engine_plan_slot_len_defaults_to_the_rotary_table_and_never_exceeds_it():
    from vlmserve.engine import EngineConfig

    rotary = glm4v_9b().rotary_positions
    assert _engine_plan(140, 26).slot_len == rotary
    assert _engine_plan(140, 26, EngineConfig(slot_len=10 * rotary)).slot_len == rotary


def test_engine_plan_without_prefix_cache_reserves_no_caches_and_fits_more():
    from vlmserve.engine import EngineConfig

    with_caches = _engine_plan(24, 7.7, EngineConfig(max_batch=96, slot_len=2048))
    without = _engine_plan(24, 7.7, EngineConfig(max_batch=96, slot_len=2048, prefix_cache=False))
    assert without.prefix_store == 0 and without.image_cache == 0
    assert without.slots > with_caches.slots


def test_engine_plan_refuses_a_hostile_config_clearly():
    from vlmserve.engine import EngineConfig

    with pytest.raises(mp.PlanError, match="vision_batch must be positive"):
        _engine_plan(16, 7.7, EngineConfig(vision_batch=-1))
    with pytest.raises(mp.PlanError, match="max_slots must be positive"):
        _engine_plan(16, 7.7, EngineConfig(max_batch=0))
    with pytest.raises(mp.PlanError, match="prefix_entries must not be negative"):
        _engine_plan(16, 7.7, EngineConfig(prefix_cache_entries=-3))
    with pytest.raises(mp.PlanError, match="no KV slot fits"):          # default micro-batches on a small card
        _engine_plan(12, 7.7)


def test_the_16_gib_bench_mode_plans_with_the_engine_rule():
    """bench/serve_throughput.py --budget-gib sizes the engine it starts by engine_plan, with that engine's config:
    the same plan as the explicit arguments above (so the 16 GB figures measured before still apply)."""
    from conftest import bench_module

    bench = bench_module("serve_throughput")
    config = bench.budget_config(96)
    plan = bench.budget_plan(16, int(0.55 * GIB), int(7.7 * GIB), glm4v_9b(), config)
    assert plan == glm_plan(16, 7.7)
    assert config.vision_batch == 2 and config.prefill_tokens == 4096 and config.slot_len == 2048


def _fit(card_gib: float, weights_gib: float, config=None):
    import torch

    from vlmserve.engine import EngineConfig

    memory = mp.DeviceMemory(card_bytes=int(card_gib * GIB), context_bytes=int(0.55 * GIB),
                             weights_bytes=int(weights_gib * GIB))
    return mp.fit_engine_config(glm4v_9b(), config or EngineConfig(), torch.bfloat16, memory)


def test_a_16_gib_card_with_default_settings_serves_on_the_small_card_settings():
    """Default micro-batches leave no KV slot beside NF4 weights on 16 GiB: the engine takes the small-card settings
    (those the 16 GB bench measures) instead of refusing to start."""
    config, plan, shrunk = _fit(16, 7.7)
    assert shrunk and plan.slots >= 1
    assert {k: getattr(config, k) for k in mp.SMALL_CARD} == mp.SMALL_CARD
    assert plan == mp.engine_plan(glm4v_9b(), config, __import__("torch").bfloat16,
                                  mp.DeviceMemory(int(16 * GIB), int(0.55 * GIB), int(7.7 * GIB)))


def test_a_big_card_keeps_its_settings_and_asking_for_less_is_kept():
    from vlmserve.engine import EngineConfig

    config, plan, shrunk = _fit(140, 26)
    assert not shrunk and config == EngineConfig() and plan.slots == EngineConfig().max_batch
    modest = EngineConfig(vision_batch=1, slot_len=1024, prefill_tokens=2048)
    small = mp.small_card_config(modest)
    assert (small.vision_batch, small.slot_len, small.prefill_tokens) == (1, 1024, 2048)


def test_a_card_too_small_even_for_the_small_card_settings_says_so_with_the_configured_numbers():
    with pytest.raises(mp.PlanError, match="no KV slot fits"):
        _fit(9, 7.7)


def test_a_context_length_asked_for_is_kept_by_the_small_card_fallback():
    """--max-model-len is the user's: on a card where the defaults leave no slot, the fallback shrinks the micro-batches
    and caches but not the context asked for; when that cannot fit, the error says so instead of serving less."""
    from vlmserve.engine import EngineConfig

    config, plan, shrunk = _fit(16, 7.7, EngineConfig(slot_len=4096))
    assert shrunk and config.slot_len == plan.slot_len == 4096 and plan.slots >= 1
    assert config.vision_batch == mp.SMALL_CARD["vision_batch"]
    with pytest.raises(mp.PlanError, match="no slot of the 8192 tokens asked for .* fits either, while 2 of 2048 would"):
        _fit(11.5, 7.7, EngineConfig(slot_len=8192))
    with pytest.raises(mp.PlanError, match=r"no KV slot fits.*shrink slot_len, the micro-batches or the caches$"):
        _fit(11.3, 7.7, EngineConfig(slot_len=8192))     # not even 2,048 tokens: the plain refusal



def test_the_vision_mlp_chunks_of_16_bit_and_fp8_weights_are_planned_for():
    """VISION_PER_IMAGE was measured with 2,048-token chunks of fc1's output; larger chunks (16-bit and FP8 weights)
    add their extra tokens at 15,360 values of 3 bytes, never more tokens than the micro-batch has."""
    import torch

    from vlmserve.engine import EngineConfig

    cfg = glm4v_9b()
    width = cfg.vision.intermediate_size
    assert mp.vision_chunk_extra(cfg, 4, 2048) == 0
    assert mp.vision_chunk_extra(cfg, 4, 12816) == (12816 - 2048) * width * 3
    assert mp.vision_chunk_extra(cfg, 1, 12816) == (6401 - 2048) * width * 3       # one image: its own tokens
    config = EngineConfig(max_batch=40, slot_len=3000, vision_batch=4)
    memory = mp.DeviceMemory(card_bytes=40 * GIB, context_bytes=int(0.55 * GIB), weights_bytes=20 * GIB)
    measured = mp.engine_plan(cfg, config, torch.bfloat16, memory)
    bigger = mp.engine_plan(cfg, config, torch.bfloat16, memory, vision_chunk_tokens=12816)
    assert bigger.activations - measured.activations == (12816 - 2048) * width * 3


def test_the_vision_mlp_chunk_follows_the_weights():
    """16-bit and FP8 weights: the large chunks; 4-bit: the measured 2,048 (small cards)."""
    import torch

    from vlmserve.quant.linear import NF4Linear
    from vlmserve.tiny import tiny_config
    from vlmserve.vision import MLP

    mlp = MLP(tiny_config())
    assert mlp.chunk_tokens() == MLP.tokens_per_chunk
    mlp.fc1 = NF4Linear.from_weight(torch.randn(64, 32), None, torch.float32)
    assert mlp.chunk_tokens() == MLP.nf4_tokens_per_chunk == mp.MEASURED_CHUNK
