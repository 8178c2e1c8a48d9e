"""The dtype rule: the image is cast to the vision tower's dtype/device as read at run time."""
import pytest
import torch

from vlmserve.weights import load_model

# bf16 keeps 8 mantissa bits: on this fan-in-scaled tiny model (logit std ~1) its logits land
# ~0.12 from float32, fp16 ~0.015 (measured); the bounds leave room without hiding a wrong layout
# (the fixture README's classic mistakes move logits by 0.7 to 4.6).
TOL = {torch.bfloat16: (5e-3, 0.3), torch.float16: (1e-3, 0.05), torch.float32: (1e-5, 1e-4)}


@pytest.fixture(scope="module", params=[torch.float32, torch.bfloat16, torch.float16], ids=str)
def model_in(request, fixture_dir):
    model, _ = load_model(fixture_dir, "cpu", request.param)
    return model, request.param


@pytest.mark.parametrize("pixel_dtype", [torch.float64, torch.float16, torch.bfloat16, torch.float32], ids=str)
def test_any_image_dtype_runs_in_the_tower_dtype(model_in, pixel_dtype, fixture_inputs, fixture_expected):
    model, dtype = model_in
    assert all(p.dtype == dtype for p in model.parameters())
    pixels = fixture_inputs["pixel_values"].to(pixel_dtype)
    with torch.inference_mode():
        vision = model.encode_images(pixels)
        logits = model(fixture_inputs["input_ids"], pixels)
    assert vision.dtype == dtype and logits.dtype == dtype
    tol_vision, tol_logits = TOL[dtype]
    if pixel_dtype in (torch.float16, torch.bfloat16) and dtype == torch.float32:
        tol_vision, tol_logits = 2e-2, 0.3      # the image itself was rounded before the tower
    assert (vision.float() - fixture_expected["vision_embeds"]).abs().max() < tol_vision
    assert (logits.float() - fixture_expected["logits"]).abs().max() < tol_logits


def test_bf16_tower_with_fp16_image_in_a_float32_model(fixture_dir, fixture_inputs, fixture_expected):
    """The official demo's crash: tower in bfloat16, image arriving as float16."""
    model, _ = load_model(fixture_dir, "cpu", "float32")
    model.vision.to(torch.bfloat16)               # changed after loading: must be read at run time
    pixels = fixture_inputs["pixel_values"].half()
    with pytest.raises(RuntimeError):
        model.vision(pixels)                      # what happens without the cast
    with torch.inference_mode():
        vision = model.encode_images(pixels)
        logits = model(fixture_inputs["input_ids"], pixels)
    assert vision.dtype == torch.bfloat16 and logits.dtype == torch.float32
    assert (logits - fixture_expected["logits"]).abs().max() < 0.3
