"""Turns a request's `image_url` into a decoded RGB image plus a content hash.

Data URLs are always accepted. Local files (a path or file:// URL) and http(s) URLs are fetched only
when the server was started with the matching flag, because either lets a client make the server
read things on the client's behalf. Every way in is bounded in bytes and in pixels, so a hostile
image (huge file, decompression bomb) is a 400, never a crashed or swapped-out server.
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

from PIL import Image

from .protocol import ApiError, bad_request

PARAM = "messages"


@dataclass(frozen=True)
class ImagePolicy:
    allow_local_files: bool = False
    allow_http: bool = False
    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 64_000_000
    http_timeout_s: float = 20.0


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
    from .image import load_rgb

    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
    except Exception:
        raise bad_request("image could not be decoded (not a supported image format)", PARAM, "invalid_image") from None
    if width * height > policy.max_pixels:
        raise bad_request(f"image is {width}x{height} pixels, over the limit of {policy.max_pixels} pixels",
                          PARAM, "image_too_large")
    try:
        return load_rgb(data)
    except Exception as e:
        raise bad_request(f"image could not be decoded: {e}", PARAM, "invalid_image") from None


def load_image(url: str, policy: ImagePolicy) -> LoadedImage:
    data = fetch_bytes(url, policy)
    image = decode(data, policy)
    return LoadedImage(image=image, digest=hashlib.sha256(data).hexdigest(), n_bytes=len(data))
