"""The HTTP app (FastAPI): routes, request-body parsing and error rendering. What a request means
is the chat service's business; this module only speaks HTTP."""
from __future__ import annotations

import json
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import protocol
from .chat_service import ChatService
from .engine import Engine
from .images_in import ImagePolicy
from .protocol import ApiError, bad_request


def _error(err: ApiError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status)


def build_app(engine: Engine, tokenizer, served_names: list[str], policy: ImagePolicy) -> FastAPI:
    service = ChatService(engine, tokenizer, served_names, policy)
    started = int(time.time())

    @asynccontextmanager
    async def lifespan(app):
        engine.start()
        yield
        engine.stop()

    app = FastAPI(title="vlmserve", lifespan=lifespan)

    @app.exception_handler(ApiError)
    async def api_error(request, err: ApiError):
        return _error(err)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, err: StarletteHTTPException):
        kind = "not_found_error" if err.status_code == 404 else "invalid_request_error"
        return _error(ApiError(err.status_code, str(err.detail), type=kind))

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        raw = await request.body()
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise bad_request(f"the request body is not valid JSON: {e}", code="invalid_json") from None
        chat = protocol.parse_chat_request(body)
        req = await service.to_engine(chat)
        if chat.stream:
            return service.stream(chat, req)
        return await service.complete(chat, req)

    @app.get("/v1/models")
    async def models():
        return protocol.models_body(served_names, started)

    @app.get("/health")
    async def health():
        return {"status": "ok", "running": len(engine.running), "slots": engine.n_slots}

    @app.get("/metrics")
    async def metrics():
        return PlainTextResponse(engine.metrics.render(), media_type="text/plain; version=0.0.4")

    return app
