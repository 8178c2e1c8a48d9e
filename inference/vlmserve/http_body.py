"""Reading a request body safely: JSON content type only, a size limit (checked on Content-Length
before reading, and again while reading a chunked body), and a deadline for the whole body so a
client that stalls mid-body does not hold a connection and a buffer forever."""
from __future__ import annotations

import asyncio
import json

from starlette.requests import ClientDisconnect, Request

from .protocol import ApiError


class ClientGone(Exception):
    """The client disconnected before its request was complete; nobody is left to answer."""


def require_json(request: Request) -> None:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise ApiError(415, f"the request body must be JSON with 'Content-Type: application/json' "
                            f"(got {media or 'no content type'!r})", code="unsupported_media_type")


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"the request body is larger than the limit of {limit} bytes", code="request_too_large")


async def read_body(request: Request, max_bytes: int, timeout_s: float) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "invalid Content-Length header", code="invalid_request")
        if int(declared) > max_bytes:
            raise _too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0

    async def pull() -> None:
        nonlocal size
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(max_bytes)
            chunks.append(chunk)

    try:
        await asyncio.wait_for(pull(), timeout_s)
    except asyncio.TimeoutError:
        raise ApiError(408, f"the request body did not arrive within {timeout_s:g} s", code="request_timeout") from None
    except ClientDisconnect:
        raise ClientGone() from None
    return b"".join(chunks)


async def until_disconnected(request: Request) -> None:
    """Returns when the client closes the connection (call once the body has been read)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def require_text(body) -> None:
    """JSON may escape a lone UTF-16 surrogate ("\\ud800"), which decodes to a Python string that no
    UTF-8 encoder accepts: echoed back (a model name, an error message) it would fail the response.
    Such a body is refused like any other malformed JSON."""
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, "the JSON body holds an unpaired UTF-16 surrogate escape (\\ud800-\\udfff), which is not text",
                       code="invalid_json") from None
