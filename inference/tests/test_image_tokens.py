"""The image-token arithmetic the engine schedules with (`GLM4V.image_tokens`) agrees with what the
model does to a whole sequence: length of the spliced prompt, where it splits, and rotary positions."""
import pytest
import torch


def test_split_lengths_and_positions_match_the_whole_sequence_splice(fixture_model, fixture_inputs):
    rule = fixture_model.image_tokens
    ids, pixels = fixture_inputs["input_ids"], fixture_inputs["pixel_values"]
    row = ids[0].tolist()
    with torch.inference_mode():
        vision = fixture_model.encode_images(pixels[:1])
        _, whole = fixture_model.embed(ids[:1], vision)
        prefix, suffix = rule.split(row)
        _, prefix_pos = fixture_model.embed(torch.tensor([prefix]), vision)
    assert prefix + suffix == row and prefix[-1] == fixture_model.config.eoi_token_id
    assert whole.shape[1] == rule.expanded_len(len(row), True)
    assert prefix_pos.shape[1] == rule.expanded_len(len(prefix), True)
    # the suffix placed after the cached prefix continues exactly where the whole splice does
    start = rule.position_after(len(prefix))
    assert whole[0, prefix_pos.shape[1]:].tolist() == list(range(start, start + len(suffix)))
    assert whole[0, -1].item() + 1 == rule.position_after(len(row))
    assert rule.expanded_len(len(row), False) == len(row)


def test_split_of_a_prompt_without_image_is_a_clear_error(fixture_model):
    with pytest.raises(ValueError, match="no <|end_of_image|>"):
        fixture_model.image_tokens.split([1, 2, 3])
