"""Image decoding for requests: EXIF orientation honoured, far-too-large images decoded smaller, the
pixel limit applied to what is decoded and explained when it refuses."""
import io

import pytest
from PIL import Image

from vlmserve.images_in import ImagePolicy, decode
from vlmserve.protocol import ApiError


def encoded(img, fmt, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_exif_rotated_jpeg_comes_out_upright():
    img = Image.new("RGB", (40, 20), (200, 0, 0))
    exif = img.getexif()
    exif[0x0112] = 6          # "rotate 90 degrees clockwise to display"
    assert decode(encoded(img, "JPEG", exif=exif), ImagePolicy()).size == (20, 40)


def test_far_larger_jpeg_is_decoded_at_reduced_size_within_the_pixel_limit():
    data = encoded(Image.new("RGB", (4000, 3000), (10, 120, 200)), "JPEG")
    out = decode(data, ImagePolicy(max_pixels=1_000_000, target_size=224))
    # 1/8 scale (500x375) keeps both sides >= 224; then no further box reduction below 2x the target
    assert out.size == (500, 375) and out.mode == "RGB"


def test_image_near_the_model_size_is_decoded_whole():
    data = encoded(Image.new("RGB", (300, 200), (10, 120, 200)), "PNG")
    assert decode(data, ImagePolicy(target_size=224)).size == (300, 200)


def test_pixel_limit_error_says_what_was_decoded_and_what_to_do():
    data = encoded(Image.new("L", (3000, 2000), 7), "PNG")
    with pytest.raises(ApiError) as e:
        decode(data, ImagePolicy(max_pixels=1_000_000, target_size=224))
    assert e.value.code == "image_too_large"
    assert "3000x2000" in e.value.message and "reduced size" in e.value.message and "224x224" in e.value.message
