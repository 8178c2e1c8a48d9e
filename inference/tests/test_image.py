import io

import numpy as np
import pytest
import torch
from PIL import Image

from vlmserve.image import CLIP_MEAN, CLIP_STD, load_rgb, preprocess


def png_bytes(img):
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "I;16", "CMYK"])
def test_any_mode_becomes_rgb(mode):
    img = Image.new("RGB", (30, 20), (10, 200, 30)).convert(mode)
    out = load_rgb(png_bytes(img) if mode not in ("CMYK",) else img)
    assert out.mode == "RGB" and out.size == (30, 20)


def test_transparent_pixels_become_white():
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert load_rgb(png_bytes(img)).getpixel((0, 0)) == (255, 255, 255)
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([0, 0, 0] * 256)
    pal.info["transparency"] = 0
    assert load_rgb(pal).getpixel((1, 1)) == (255, 255, 255)


def test_preprocess_matches_the_official_recipe():
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (37, 91, 3), dtype=np.uint8))   # odd aspect ratio
    x = preprocess(img, 56)
    assert x.shape == (3, 56, 56) and x.dtype == torch.float32
    ref = np.asarray(img.resize((56, 56), Image.Resampling.BICUBIC), dtype=np.float32) / 255.0
    ref = (ref - np.array(CLIP_MEAN, dtype=np.float32)) / np.array(CLIP_STD, dtype=np.float32)
    assert torch.allclose(x, torch.from_numpy(ref).permute(2, 0, 1), atol=1e-6)


def test_white_pixel_value():
    x = preprocess(Image.new("RGB", (10, 10), (255, 255, 255)), 14)
    expected = torch.tensor([(1 - m) / s for m, s in zip(CLIP_MEAN, CLIP_STD)])
    assert torch.allclose(x[:, 3, 3], expected, atol=1e-6)


def test_not_an_image_is_a_clear_error():
    with pytest.raises(ValueError, match="not a readable image"):
        load_rgb(b"definitely not an image")
