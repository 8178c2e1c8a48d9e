"""Turns a request's `image_url` into a decoded RGB image plus a content hash.

Data URLs are always accepted. Local files (a path or file:// URL) and http(s) URLs are fetched only
when the server was started with the matching flag, because either lets a client make the server
read things on the client's behalf. Every way in is bounded in bytes and in pixels, so a hostile
image (huge file, decompression bomb) is a 400, never a crashed or swapped-out server.

The model sees every image at a fixed size (1120 px for GLM-4V), so an image far larger than that is
decoded at reduced size: JPEG by the decoder's own 1/2, 1/4, 1/8 scaling (PIL's draft mode, which
never builds the full-size pixels), other formats by an integer box reduction after decoding. The
pixel limit applies to what is actually decoded.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import urllib.parse
import urllib.request
from dataclasses import dataclass

from PIL import Image, ImageOps

from .protocol import ApiError, bad_request

PARAM = "messages"

# The pixel limit below replaces PIL's own decompression-bomb guard, which would refuse a huge
# JPEG before draft mode could decode it at reduced size.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class ImagePolicy:
    allow_local_files: bool = False
    allow_http: bool = False
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 64_000_000
    http_timeout_s: float = 20.0
    target_size: int = 1120       # the model's input side; images far above it are decoded smaller


@dataclass(frozen=True)
class LoadedImage:
    image: Image.Image
    digest: str          # sha256 of the encoded bytes: the key for embedding and prefix reuse
    n_bytes: int


def _too_big(n: int, policy: ImagePolicy) -> ApiError:
    return bad_request(f"image is {n} bytes, over the limit of {policy.max_bytes} bytes", PARAM, "image_too_large")


def _from_data_url(url: str, policy: ImagePolicy) -> bytes:
    header, sep, payload = url.partition(",")
    if not sep or ";base64" not in header:
        raise bad_request("image data URLs must be of the form data:image/...;base64,<data>", PARAM, "invalid_image")
    if len(payload) * 3 // 4 > policy.max_bytes + 3:
        raise _too_big(len(payload) * 3 // 4, policy)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("image data URL is not valid base64", PARAM, "invalid_image") from None


def _from_file(path: str, policy: ImagePolicy) -> bytes:
    if not policy.allow_local_files:
        raise bad_request("local image files are disabled on this server (start it with --allow-local-files)",
                          PARAM, "image_source_disabled")
    try:
        size = os.path.getsize(path)
        if size > policy.max_bytes:
            raise _too_big(size, policy)
        with open(path, "rb") as f:
            return f.read(policy.max_bytes + 1)
    except OSError as e:
        raise bad_request(f"cannot read image file {path!r}: {e.strerror}", PARAM, "invalid_image") from None


def _from_http(url: str, policy: ImagePolicy) -> bytes:
    if not policy.allow_http:
        raise bad_request("http(s) image URLs are disabled on this server (start it with --allow-http-images)",
                          PARAM, "image_source_disabled")
    try:
        with urllib.request.urlopen(url, timeout=policy.http_timeout_s) as resp:
            data = resp.read(policy.max_bytes + 1)
    except Exception as e:  # network errors come in many classes; all mean "could not fetch"
        raise bad_request(f"cannot fetch image {url!r}: {e}", PARAM, "invalid_image") from None
    if len(data) > policy.max_bytes:
        raise _too_big(len(data), policy)
    return data


def fetch_bytes(url: str, policy: ImagePolicy) -> bytes:
    if url.startswith("data:"):
        data = _from_data_url(url, policy)
    elif url.startswith(("http://", "https://")):
        data = _from_http(url, policy)
    elif url.startswith("file://"):
        data = _from_file(urllib.parse.unquote(urllib.parse.urlparse(url).path), policy)
    elif "://" not in url:
        data = _from_file(url, policy)
    else:
        raise bad_request(f"unsupported image URL scheme in {url[:40]!r}", PARAM, "invalid_image")
    if len(data) > policy.max_bytes:
        raise _too_big(len(data), policy)
    return data


def decode(data: bytes, policy: ImagePolicy) -> Image.Image:
    """Decoded RGB image, at reduced size when the file is far larger than the model's input."""
    from .image import load_rgb

    try:
        img = Image.open(io.BytesIO(data))
        width, height = img.size
        if img.format == "JPEG" and min(width, height) >= 2 * policy.target_size:
            # the decoder picks the largest 1/2^k scale that keeps both sides >= the target
            img.draft("RGB", (policy.target_size, policy.target_size))
    except Exception:
        raise bad_request("image could not be decoded (not a supported image format)", PARAM, "invalid_image") from None
    dw, dh = img.size
    if dw * dh > policy.max_pixels:
        reduced = f", {dw}x{dh} at the reduced size it is decoded at" if (dw, dh) != (width, height) else ""
        raise bad_request(
            f"image is {width}x{height} pixels{reduced}, over the limit of {policy.max_pixels} pixels. The model "
            f"sees {policy.target_size}x{policy.target_size}; images far larger are decoded at reduced size "
            "(JPEG up to 8x smaller per side), so send a smaller image or a JPEG", PARAM, "image_too_large")
    try:
        img.load()
        ImageOps.exif_transpose(img, in_place=True)   # in place: no copy of an image without rotation
        img = load_rgb(img)
        factor = min(img.size) // (2 * policy.target_size)
        return img.reduce(factor) if factor >= 2 else img
    except Exception as e:
        raise bad_request(f"image could not be decoded: {e}", PARAM, "invalid_image") from None


def load_image(url: str, policy: ImagePolicy) -> LoadedImage:
    data = fetch_bytes(url, policy)
    image = decode(data, policy)
    return LoadedImage(image=image, digest=hashlib.sha256(data).hexdigest(), n_bytes=len(data))
