"""The HTTP app (FastAPI): routes, request-body reading and error rendering. What a request means
is the chat service's business; this module only speaks HTTP."""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import protocol
from .chat_service import ChatService
from .engine import Engine
from .http_body import ClientGone, read_body, require_json, require_text, until_disconnected
from .http_guard import Guard
from .images_in import ImagePolicy
from .metrics import HttpMetrics
from .protocol import ApiError

log = logging.getLogger("vlmserve.http")


@dataclass(frozen=True)
class HttpLimits:
    max_body_bytes: int = 32 * 1024 * 1024
    read_timeout_s: float = 30.0          # for the whole request body
    prep_workers: int = 4                 # threads decoding images and tokenizing
    api_key: str | None = None
    loopback_only: bool = True            # accept only loopback Host names (set when bound to loopback)
    docs: bool = False                    # FastAPI's /docs, /redoc and /openapi.json


class _AsciiJSONResponse(JSONResponse):
    """Errors may quote what the client sent; ASCII escapes keep any such text encodable."""

    def render(self, content) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _error(err: ApiError) -> JSONResponse:
    return _AsciiJSONResponse(err.body(), status_code=err.status)


def build_app(engine: Engine, tokenizer, served_names: list[str], policy: ImagePolicy,
              limits: HttpLimits = HttpLimits()):
    http_metrics = HttpMetrics()
    service = ChatService(engine, tokenizer, served_names, policy, limits.prep_workers, http_metrics)
    started = int(time.time())

    @asynccontextmanager
    async def lifespan(app):
        engine.start()
        yield
        engine.stop()
        service.close()

    docs = {} if limits.docs else {"docs_url": None, "redoc_url": None, "openapi_url": None}
    app = FastAPI(title="vlmserve", lifespan=lifespan, **docs)

    @app.exception_handler(ApiError)
    async def api_error(request, err: ApiError):
        return _error(err)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, err: StarletteHTTPException):
        kind = "not_found_error" if err.status_code == 404 else "invalid_request_error"
        return _error(ApiError(err.status_code, str(err.detail), type=kind))

    @app.exception_handler(Exception)
    async def unexpected(request, err: Exception):
        # Starlette's own answer would be a text/plain 500; clients of an OpenAI API expect its JSON
        log.error("%s %s failed", request.method, request.url.path, exc_info=err)
        return _error(ApiError(500, "internal server error", type="internal_error"))

    async def respond(chat) -> Response:
        req = await service.to_engine(chat)
        if chat.stream:   # from here on the streaming response watches for a disconnect itself
            return service.stream(chat, req)
        return await service.complete(chat, req)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        require_json(request)
        try:
            raw = await read_body(request, limits.max_body_bytes, limits.read_timeout_s)
        except ClientGone:
            return _client_gone()
        body = protocol.parse_json_body(raw)
        require_text(body)
        chat = protocol.parse_chat_request(body)
        # A client that goes away before its answer must not keep an engine slot: the work is
        # cancelled, which aborts the engine request (engine.stream.submit's iterator does that).
        work = asyncio.ensure_future(respond(chat))
        gone = asyncio.ensure_future(until_disconnected(request))
        try:
            await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not work.done():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError, ApiError):
                await work
            return _client_gone()
        try:
            return work.result()
        except (ApiError, asyncio.CancelledError):
            raise
        except Exception:   # an OpenAI-style 500 for the client, the traceback for the log
            log.exception("request %s failed", chat.request_id)
            raise ApiError(500, "internal server error", type="internal_error") from None

    def _client_gone() -> Response:
        http_metrics.client_disconnects.inc()
        log.debug("client disconnected before its answer")
        return Response(status_code=499)   # nobody reads it; nginx's code for "client closed request"

    @app.get("/v1/models")
    async def models():
        return protocol.models_body(served_names, started)

    @app.get("/health")
    async def health():
        return {"status": "ok", "running": len(engine.running), "slots": engine.n_slots}

    @app.get("/metrics")
    async def metrics():
        return PlainTextResponse(engine.metrics.render() + http_metrics.render(),
                                 media_type="text/plain; version=0.0.4")

    return Guard(app, loopback_only=limits.loopback_only, api_key=limits.api_key)
