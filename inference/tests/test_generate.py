import torch

from vlmserve.generate import generate
from vlmserve.sampling import sample


def test_greedy_is_argmax():
    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(0))
    assert torch.equal(sample(logits, 0.0), logits.argmax(-1))


def test_seeded_sampling_is_reproducible_and_follows_the_distribution():
    logits = torch.log(torch.tensor([[0.25, 0.75]])).expand(4000, 2)
    a = sample(logits, 1.0, 1.0, torch.Generator().manual_seed(7))
    b = sample(logits, 1.0, 1.0, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    assert 0.72 < a.float().mean().item() < 0.78


def test_top_p_keeps_the_smallest_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2]])).expand(2000, 3)
    ids = sample(logits, 1.0, 0.6, torch.Generator().manual_seed(1))
    assert set(ids.tolist()) == {0, 1}
    assert set(sample(logits, 1.0, 0.01, torch.Generator().manual_seed(1)).tolist()) == {0}


def test_per_row_settings():
    logits = torch.tensor([[0.0, 3.0, 0.0]] * 2000)
    ids = sample(logits, torch.tensor([0.0, 5.0] * 1000), torch.tensor([1.0] * 2000), torch.Generator().manual_seed(3))
    assert set(ids[0::2].tolist()) == {1}
    assert len(set(ids[1::2].tolist())) == 3


def test_stops_on_end_tokens(fixture_model, fixture_inputs, fixture_expected):
    first = fixture_expected["greedy_ids"][0, 0].item()
    g = generate(fixture_model, fixture_inputs["input_ids"], fixture_inputs["pixel_values"],
                 max_new_tokens=8, eos_ids=(first,))
    assert g.ids[0] == [] and g.finish_reasons[0] == "stop"
    assert g.ids[1] == fixture_expected["greedy_ids"][1].tolist() and g.finish_reasons[1] == "length"


def test_default_end_tokens_come_from_the_config(fixture_model, fixture_inputs):
    g = generate(fixture_model, fixture_inputs["text_input_ids"], max_new_tokens=40)
    eos = set(fixture_model.config.eos_token_ids)
    assert eos == {400, 407, 409}
    for ids, why in zip(g.ids, g.finish_reasons):
        assert not eos & set(ids)
        assert why == "stop" or len(ids) == 40


def test_seeded_generation_repeats(fixture_model, fixture_inputs):
    kw = dict(max_new_tokens=6, temperature=0.8, top_p=0.8, eos_ids=())
    a = generate(fixture_model, fixture_inputs["input_ids"], fixture_inputs["pixel_values"], seed=11, **kw)
    b = generate(fixture_model, fixture_inputs["input_ids"], fixture_inputs["pixel_values"], seed=11, **kw)
    assert a.ids == b.ids and all(len(r) == 6 for r in a.ids)
