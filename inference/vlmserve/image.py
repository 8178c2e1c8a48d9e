"""Image decoding and the preprocessing of the official GLM-4V tokenizer code: RGB, bicubic resize to SxS
(aspect ratio not kept), [0, 1], CLIP mean/std, channels first."""
from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def load_rgb(source) -> Image.Image:
    """bytes, a path or a PIL image -> RGB PIL image.

    Transparent pixels are put on white: a plain convert("RGB") would keep whatever colour the
    transparent pixels happen to hold (often black), which the model would then "see".
    """
    if isinstance(source, Image.Image):
        img = source
    else:
        try:
            img = Image.open(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source)
            img.load()
        except (UnidentifiedImageError, OSError) as e:
            raise ValueError(f"not a readable image: {e}") from e
        img = ImageOps.exif_transpose(img)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "RGBa"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return img.convert("RGB") if img.mode != "RGB" else img


# (x / 255 - mean) / std folded into one multiply-add per channel
_SCALE = np.array([1.0 / (255.0 * s) for s in CLIP_STD], dtype=np.float32)
_OFFSET = np.array([-m / s for m, s in zip(CLIP_MEAN, CLIP_STD)], dtype=np.float32)


def preprocess(img: Image.Image, image_size: int, pin: bool = False) -> torch.Tensor:
    """PIL image (any size/mode) -> float32 tensor [3, S, S], normalized with the CLIP constants; with `pin`, in
    page-locked memory, so that the engine's copy to the GPU is asynchronous.

    Written channel by channel straight into the channels-first result: the HTTP server runs this
    for every image, and the plain float32 -> normalize -> permute -> copy chain cost ~15x more CPU."""
    img = load_rgb(img)
    if img.size != (image_size, image_size):
        img = img.resize((image_size, image_size), Image.Resampling.BICUBIC)
    result = torch.empty((3, image_size, image_size), dtype=torch.float32, pin_memory=pin)
    out = result.numpy()
    for c, band in enumerate(img.split()):
        np.multiply(np.asarray(band), _SCALE[c], out=out[c])
        out[c] += _OFFSET[c]
    return result
