"""`python -m vlmserve serve`: the OpenAI-compatible HTTP server (FastAPI + uvicorn).

The HTTP layer validates, fetches and preprocesses images (in worker threads), builds the prompt ids
and hands a GenerationRequest to the engine thread; outputs come back through an asyncio queue.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import protocol
from .choice import ChoiceTrie
from .engine import ContextTooLong, Engine, EngineConfig, GenerationRequest, Overloaded, submit
from .images_in import ImagePolicy, load_image
from .protocol import ApiError, ChatRequest, bad_request

log = logging.getLogger("vlmserve.server")


def _error(err: ApiError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status)


def _sse(body: dict) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


class ChatService:
    """Turns a validated ChatRequest into an engine request and its outputs into OpenAI responses."""

    def __init__(self, engine: Engine, tokenizer, served_names: list[str], policy: ImagePolicy):
        self.engine, self.tokenizer = engine, tokenizer
        self.served_names = served_names
        self.policy = policy
        self.end_id = tokenizer.eos_ids[0]

    def _prepare_image(self, url: str):
        from .image import preprocess

        loaded = load_image(url, self.policy)
        return preprocess(loaded.image, self.engine.image_size), loaded.digest

    async def to_engine(self, chat: ChatRequest) -> GenerationRequest:
        from .chat import build_prompt

        if chat.model not in self.served_names:
            raise ApiError(404, f"the model '{chat.model}' does not exist; this server serves {self.served_names}",
                           param="model", code="model_not_found")
        pixels, digest = None, None
        if chat.image_url is not None:
            pixels, digest = await asyncio.to_thread(self._prepare_image, chat.image_url)
        try:
            ids = build_prompt(self.tokenizer, chat.messages, pixels is not None)
        except ValueError as e:
            raise bad_request(str(e), "messages") from None
        try:
            self.engine.check_fits(ids, pixels is not None, chat.max_tokens)
        except ContextTooLong as e:
            raise bad_request(str(e), "messages", "context_length_exceeded") from None
        choices = ChoiceTrie.from_strings(chat.choices, self.tokenizer, self.end_id) if chat.choices else None
        return GenerationRequest(
            request_id=chat.request_id, prompt_ids=ids, pixel_values=pixels, image_digest=digest,
            max_tokens=chat.max_tokens, temperature=chat.temperature, top_p=chat.top_p, seed=chat.seed,
            stop=chat.stop, choices=choices, ignore_eos=chat.ignore_eos)

    def open(self, req: GenerationRequest):
        try:
            return submit(self.engine, req)
        except Overloaded as e:
            raise ApiError(429, str(e), type="rate_limit_exceeded", code="kv_cache_full") from None

    async def complete(self, chat: ChatRequest, req: GenerationRequest) -> JSONResponse:
        outputs = self.open(req)
        text, last = [], None
        async for out in outputs:
            text.append(out.text)
            last = out
        if last.error:
            raise ApiError(500, last.error, type="internal_error")
        return JSONResponse(protocol.completion_body(chat, "".join(text), last.finish_reason,
                                                     last.prompt_tokens, last.completion_tokens))

    def stream(self, chat: ChatRequest, req: GenerationRequest) -> StreamingResponse:
        outputs = self.open(req)

        async def events():
            yield _sse(protocol.chunk_body(chat, {"role": "assistant", "content": ""}))
            last = None
            async for out in outputs:
                last = out
                if out.error:
                    yield _sse(ApiError(500, out.error, type="internal_error").body())
                    break
                if out.text:
                    yield _sse(protocol.chunk_body(chat, {"content": out.text}))
                if out.finished:
                    yield _sse(protocol.chunk_body(chat, {}, out.finish_reason))
            if chat.include_usage and last is not None:
                yield _sse(protocol.chunk_body(chat, {}, usage_counts=protocol.usage(
                    last.prompt_tokens, last.completion_tokens), with_choice=False))
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


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


# ---- command line -----------------------------------------------------------------------------
def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m vlmserve serve",
                                description="OpenAI-compatible GLM-4V server with continuous batching")
    p.add_argument("--model", required=True, help="checkpoint folder (official layout) or 'tiny-random'")
    p.add_argument("--quant", choices=["nf4", "none"], default="none")
    p.add_argument("--keep-16bit", action="append", default=[], metavar="PATTERN",
                   help="keep layers matching this glob over the module path in 16-bit with --quant nf4 (repeatable; e.g. output_layer, vision, 'encoder.layers.3?.*')")
    p.add_argument("--dtype", choices=["auto", "bfloat16", "float16", "float32"], default="auto")
    p.add_argument("--device", default=None, help="cuda, cuda:1, cpu (default: cuda when available)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--served-model-name", action="append", default=None,
                   help="name clients use in 'model' (repeatable; default: glm-4v-9b and the folder name)")
    p.add_argument("--allow-local-files", action="store_true", help="accept image_url as a local path or file:// URL")
    p.add_argument("--allow-http-images", action="store_true", help="fetch http(s) image URLs")
    p.add_argument("--max-image-bytes", type=int, default=20 * 1024 * 1024)
    p.add_argument("--max-batch", type=int, default=64, help="sequence slots (concurrent sequences)")
    p.add_argument("--kv-budget-tokens", type=int, default=None,
                   help="KV cache size in tokens (default: from free GPU memory; max-batch x context on CPU)")
    p.add_argument("--max-model-len", type=int, default=None, help="context length per sequence, image included")
    p.add_argument("--max-waiting", type=int, default=None, help="requests allowed to wait before 429")
    p.add_argument("--no-prefix-cache", action="store_true", help="compute every image and prefix anew")
    p.add_argument("--no-cuda-graphs", action="store_true")
    p.add_argument("--log-level", default="info")
    return p.parse_args(argv)


def load(args):
    import torch

    from .tokenizer import Tokenizer
    from .weights import load_model

    from .tiny import resolve_model

    model_dir = resolve_model(args.model)
    if args.model == "tiny-random":
        log.warning("serving the TINY RANDOM model: its answers are random text, not GLM-4V")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, _ = load_model(model_dir, device=device, dtype=args.dtype, quant=args.quant, keep_16bit=args.keep_16bit)
    return model, Tokenizer.from_dir(model_dir), model_dir


def main(argv=None) -> int:
    import uvicorn

    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    model, tokenizer, model_dir = load(args)
    names = args.served_model_name or list(dict.fromkeys(["glm-4v-9b", args.model if args.model == "tiny-random"
                                                           else model_dir.name]))
    config = EngineConfig(max_batch=args.max_batch, slot_len=args.max_model_len,
                          kv_budget_tokens=args.kv_budget_tokens, max_waiting=args.max_waiting,
                          prefix_cache=not args.no_prefix_cache, cuda_graphs=not args.no_cuda_graphs)
    engine = Engine(model, tokenizer, config)
    policy = ImagePolicy(allow_local_files=args.allow_local_files, allow_http=args.allow_http_images,
                         max_bytes=args.max_image_bytes)
    app = build_app(engine, tokenizer, names, policy)
    log.info("serving %s on http://%s:%d (models: %s)", model_dir, args.host, args.port, names)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0
