"""config.json in and out: the published layout round-trips, and a vision_config that is missing a shape, holds a
value of the wrong kind or a hostile size is refused with the key named."""
import pytest

from vlmserve.config import ModelConfig, glm4v_9b
from vlmserve.tiny import tiny_config


@pytest.mark.parametrize("cfg", [glm4v_9b(), tiny_config()], ids=["glm4v_9b", "tiny"])
def test_config_json_round_trips(cfg):
    assert ModelConfig.from_json(cfg.to_json()) == cfg


def _with_vision(**change):
    raw = glm4v_9b().to_json()
    for key, value in change.items():
        if value is None:
            del raw["vision_config"][key]
        else:
            raw["vision_config"][key] = value
    return raw


def test_optional_vision_keys_default_to_glm4v_9b():
    cfg = ModelConfig.from_json(_with_vision(scaling_factor=None, in_channels=None, layer_norm_eps=None))
    assert cfg.vision == glm4v_9b().vision


@pytest.mark.parametrize("change,match", [
    ({"patch_size": None}, "vision_config has no 'patch_size'"),
    ({"image_size": "big"}, r"vision_config.image_size='big' is not an integer"),
    ({"num_heads": [16]}, "vision_config.num_heads=.16. is not an integer"),
    ({"layer_norm_eps": {"x": 1}}, "vision_config.layer_norm_eps=.* is not a number"),
    ({"patch_size": -14}, "vision_config.patch_size=-14 must be at least 1"),
    ({"num_hidden_layers": 0}, "num_hidden_layers=0 must be at least 1"),
    ({"hidden_act": "relu"}, "hidden_act='relu' is not supported"),
    ({"num_positions": 6400}, "num_positions 6400 != "),
])
def test_a_bad_vision_config_is_refused_naming_the_key(change, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig.from_json(_with_vision(**change))


def test_vision_config_must_be_an_object():
    raw = glm4v_9b().to_json()
    raw["vision_config"] = "1120"
    with pytest.raises(ValueError, match="'vision_config' is not an object"):
        ModelConfig.from_json(raw)
