"""StaticKVCache (fixed shapes, CUDA-graph friendly) gives the same decode as DynamicKVCache."""
import torch

from vlmserve.attention import StaticKVCache
from vlmserve.generate import generate


def test_static_cache_decode_matches_the_fixture(fixture_model, fixture_inputs, fixture_expected):
    m = fixture_model
    args = (fixture_inputs["padded_input_ids"], fixture_inputs["pixel_values"],
            fixture_inputs["padded_attention_mask"], fixture_inputs["padded_position_ids"])
    with torch.inference_mode():
        hidden, positions, dyn = m.prefill(*args)
        cache = StaticKVCache.from_dynamic(dyn, max_len=positions.shape[1] + 8)
        logits = m.logits(hidden[:, -1])
        ids, pos, steps = [], positions[:, -1:], []
        for _ in range(8):
            steps.append(logits)
            nxt = logits.argmax(-1)
            ids.append(nxt)
            pos = pos + 1
            logits = m.logits(m.forward_embeds(m.transformer.embedding(nxt[:, None]), pos, cache)[:, -1])
    assert torch.stack(ids, 1).tolist() == fixture_expected["padded_greedy_ids"].tolist()
    assert (torch.stack(steps, 1) - fixture_expected["padded_greedy_step_logits"]).abs().max() < 1e-4
    assert int(cache.pos) == positions.shape[1] + 8


def test_static_cache_prefill_equals_dynamic(fixture_model, fixture_inputs):
    m = fixture_model
    ids, pix = fixture_inputs["input_ids"], fixture_inputs["pixel_values"]
    with torch.inference_mode():
        embeds, pos = m.embed(ids, m.encode_images(pix))
        cache = StaticKVCache(2, 2, 2, 40, 16, torch.float32, "cpu")
        static = m.logits(m.forward_embeds(embeds, pos, cache))
        dynamic = m(ids, pix)
    assert (static - dynamic).abs().max() < 1e-5
    g = generate(m, ids, pix, max_new_tokens=2, eos_ids=())
    assert g.ids[0][0] == int(static[0, -1].argmax())
