"""The chat service: a validated ChatRequest becomes an engine request, and the engine's outputs
become OpenAI responses (one JSON body, or server-sent events when streaming).

Image decoding and tokenizing run in worker threads so the event loop keeps serving other
requests while one client's large image is decoded.
"""
from __future__ import annotations

import asyncio
import json

from fastapi.responses import JSONResponse, StreamingResponse

from . import protocol
from .choice import ChoiceTrie
from .engine import ContextTooLong, Engine, GenerationRequest, Overloaded, submit
from .images_in import ImagePolicy, load_image
from .protocol import ApiError, ChatRequest, bad_request


def sse(body: dict) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


class ChatService:
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
            yield sse(protocol.chunk_body(chat, {"role": "assistant", "content": ""}))
            last = None
            async for out in outputs:
                last = out
                if out.error:
                    yield sse(ApiError(500, out.error, type="internal_error").body())
                    break
                if out.text:
                    yield sse(protocol.chunk_body(chat, {"content": out.text}))
                if out.finished:
                    yield sse(protocol.chunk_body(chat, {}, out.finish_reason))
            if chat.include_usage and last is not None:
                yield sse(protocol.chunk_body(chat, {}, usage_counts=protocol.usage(
                    last.prompt_tokens, last.completion_tokens), with_choice=False))
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
