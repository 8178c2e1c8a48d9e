"""Float32 parity with the official GLM-4V-9B code on fixture A (tests/data/glm4v-tiny-a)."""
import pytest
import torch

from vlmserve.generate import generate

ATOL = 1e-4   # fixture README: logit std ~1, an independent implementation lands at ~7e-6


def maxdiff(a, b):
    return (a.float() - b.float()).abs().max().item()


@pytest.fixture(scope="module")
def image_run(fixture_model, fixture_inputs):
    trace = {}
    with torch.inference_mode():
        logits = fixture_model(fixture_inputs["input_ids"], fixture_inputs["pixel_values"],
                               fixture_inputs["attention_mask"], trace=trace)
    return logits, trace


@pytest.mark.parametrize("name", ["vision_patch_embed", "vision_vit_out", "vision_conv_out", "vision_glu_out",
                                  "vision_embeds", "inputs_embeds_merged", "hidden_states"])
def test_intermediate_tensors(image_run, fixture_expected, name):
    _, trace = image_run
    assert trace[name].shape == fixture_expected[name].shape
    assert maxdiff(trace[name], fixture_expected[name]) < ATOL, name


def test_image_logits_and_positions(image_run, fixture_expected):
    logits, trace = image_run
    assert logits.shape == (2, 23, 512)
    assert maxdiff(logits, fixture_expected["logits"]) < ATOL
    assert torch.equal(trace["position_ids"], fixture_expected["position_ids"])
    assert trace["position_ids"][0].tolist()[:10] == [0, 1, 2, 3, 4, 5, 5, 5, 5, 6]


def test_greedy_with_kv_cache(fixture_model, fixture_inputs, fixture_expected):
    g = generate(fixture_model, fixture_inputs["input_ids"], fixture_inputs["pixel_values"],
                 max_new_tokens=8, eos_ids=(), keep_logits=True)
    assert g.ids == fixture_expected["greedy_ids"].tolist()
    assert maxdiff(torch.stack(g.step_logits, 1), fixture_expected["greedy_step_logits"]) < ATOL


def test_text_only_prompt(fixture_model, fixture_inputs, fixture_expected):
    trace = {}
    with torch.inference_mode():
        logits = fixture_model(fixture_inputs["text_input_ids"], attention_mask=fixture_inputs["text_attention_mask"],
                               trace=trace)
    assert maxdiff(logits, fixture_expected["text_logits"]) < ATOL
    assert torch.equal(trace["position_ids"], fixture_expected["text_position_ids"])
    g = generate(fixture_model, fixture_inputs["text_input_ids"], max_new_tokens=8, eos_ids=(), keep_logits=True)
    assert g.ids == fixture_expected["text_greedy_ids"].tolist()
    assert maxdiff(torch.stack(g.step_logits, 1), fixture_expected["text_greedy_step_logits"]) < ATOL


def test_left_padded_batch(fixture_model, fixture_inputs, fixture_expected):
    trace = {}
    args = (fixture_inputs["padded_input_ids"], fixture_inputs["pixel_values"],
            fixture_inputs["padded_attention_mask"], fixture_inputs["padded_position_ids"])
    with torch.inference_mode():
        logits = fixture_model(*args, trace=trace)
    real = fixture_expected["padded_expanded_attention_mask"].bool()
    assert torch.equal(trace["attention_mask"], fixture_expected["padded_expanded_attention_mask"])
    assert maxdiff(logits[real], fixture_expected["padded_logits"][real]) < ATOL
    g = generate(fixture_model, *args, max_new_tokens=8, eos_ids=(), keep_logits=True)
    assert g.ids == fixture_expected["padded_greedy_ids"].tolist()
    assert maxdiff(torch.stack(g.step_logits, 1), fixture_expected["padded_greedy_step_logits"]) < ATOL


def test_positions_derived_from_the_mask_when_not_given(fixture_model, fixture_inputs, fixture_expected):
    """The logits command may get a padded batch without position_ids: same result as the tokenizer's."""
    with torch.inference_mode():
        logits = fixture_model(fixture_inputs["padded_input_ids"], fixture_inputs["pixel_values"],
                               fixture_inputs["padded_attention_mask"])
    real = fixture_expected["padded_expanded_attention_mask"].bool()
    assert maxdiff(logits[real], fixture_expected["padded_logits"][real]) < ATOL


def test_kv_cache_decode_equals_full_recomputation(fixture_model, fixture_inputs):
    ids, pix = fixture_inputs["input_ids"], fixture_inputs["pixel_values"]
    g = generate(fixture_model, ids, pix, max_new_tokens=6, eos_ids=(), keep_logits=True)
    seq = torch.cat([ids, torch.tensor(g.ids)], dim=1)
    with torch.inference_mode():
        full = fixture_model(seq, pix)
    n = fixture_model.n_vision_embeds - 3
    for step in range(6):
        pos = ids.shape[1] + n - 1 + step            # spliced index whose logits chose token `step`
        assert maxdiff(full[:, pos], g.step_logits[step]) < 2e-5


def test_batch_of_two_equals_two_singles(fixture_model, fixture_inputs):
    """Padded row 1 (6 pads) against the same prompt alone without padding, and row 0 alone."""
    ids, mask = fixture_inputs["padded_input_ids"], fixture_inputs["padded_attention_mask"]
    pix = fixture_inputs["pixel_values"]
    with torch.inference_mode():
        batch = fixture_model(ids, pix, mask)
        single0 = fixture_model(ids[:1], pix[:1])
        n_pad = int((mask[1] == 0).sum())
        single1 = fixture_model(ids[1:, n_pad:], pix[1:])
    assert maxdiff(batch[0], single0[0]) < 2e-5
    assert maxdiff(batch[1, n_pad:], single1[0]) < 2e-5
    gb = generate(fixture_model, ids, pix, mask, max_new_tokens=8, eos_ids=())
    g0 = generate(fixture_model, ids[:1], pix[:1], max_new_tokens=8, eos_ids=())
    g1 = generate(fixture_model, ids[1:, n_pad:], pix[1:], max_new_tokens=8, eos_ids=())
    assert gb.ids == g0.ids + g1.ids


def test_image_ids_are_required_and_checked(fixture_model, fixture_inputs):
    ids = fixture_inputs["input_ids"].clone()
    ids[1, 6] = 5                                   # break the eoi of row 1
    with pytest.raises(ValueError, match=r"rows \[1\]"):
        fixture_model(ids, fixture_inputs["pixel_values"])
    with pytest.raises(ValueError, match="no pixel_values"):
        fixture_model(fixture_inputs["input_ids"])
    with pytest.raises(ValueError, match="pixel_values must be"):
        fixture_model(fixture_inputs["input_ids"], torch.zeros(2, 3, 28, 28))
