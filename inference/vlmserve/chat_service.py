"""The chat service: a validated ChatRequest becomes an engine request, and the engine's outputs
become OpenAI responses (one JSON body, or server-sent events when streaming).

Preparing a request (decoding its image, tokenizing its text, building its label trie) runs in a
small pool of worker threads, never on the event loop, so one client's large image or long text
does not hold up the others; the pool's size bounds how much of that work runs at once.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading

from fastapi.responses import JSONResponse, StreamingResponse

from . import protocol
from .choice import ChoiceTrie
from .engine import ContextTooLong, Engine, GenerationRequest, Overloaded, submit
from .images_in import ImagePolicy, load_image
from .metrics import HttpMetrics
from .protocol import ApiError, ChatRequest, bad_request

# A prompt longer than this many characters per context token cannot fit: refused before the
# tokenizer spends time on it (BPE on one huge unbroken word is slow). Real text averages 3-5.
MAX_CHARS_PER_TOKEN = 16


def sse(body: dict) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


class ChatService:
    def __init__(self, engine: Engine, tokenizer, served_names: list[str], policy: ImagePolicy,
                 prep_workers: int = 4, metrics: HttpMetrics | None = None):
        self.engine, self.tokenizer = engine, tokenizer
        self.served_names = served_names
        self.policy = policy
        self.end_id = tokenizer.eos_ids[0]
        self.metrics = metrics or HttpMetrics()
        self._pool = concurrent.futures.ThreadPoolExecutor(prep_workers, thread_name_prefix="vlmserve-prep")
        self._lock = threading.Lock()
        self._running = self._waiting = self._peak = 0

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def to_engine(self, chat: ChatRequest) -> GenerationRequest:
        if chat.model not in self.served_names:
            raise ApiError(404, f"the model '{chat.model}' does not exist; this server serves {self.served_names}",
                           param="model", code="model_not_found")
        chars = sum(len(m["content"]) for m in chat.messages)
        limit = MAX_CHARS_PER_TOKEN * self.engine.slot_len
        if chars > limit:
            raise bad_request(f"the messages hold {chars} characters; a prompt that fits this model's context of "
                              f"{self.engine.slot_len} tokens has at most {limit}", "messages", "context_length_exceeded")
        return await self._in_pool(self._prepare, chat)

    async def _in_pool(self, fn, *args):
        """Runs fn(*args) in the prep pool (prep_workers threads: the rest wait in its queue)."""
        with self._lock:
            self._waiting += 1
            self.metrics.prep_waiting.set(self._waiting)
        job = self._pool.submit(self._counted, fn, args)
        try:
            return await asyncio.wrap_future(job)
        except asyncio.CancelledError:
            if job.cancel():   # never started: it leaves the waiting count here, not in _counted
                with self._lock:
                    self._waiting -= 1
                    self.metrics.prep_waiting.set(self._waiting)
            raise

    def _counted(self, fn, args):
        with self._lock:
            self._waiting -= 1
            self._running += 1
            self._peak = max(self._peak, self._running)
            self.metrics.prep_waiting.set(self._waiting)
            self.metrics.prep_running.set(self._running)
            self.metrics.prep_running_peak.set(self._peak)
        try:
            return fn(*args)
        finally:
            with self._lock:
                self._running -= 1
                self.metrics.prep_running.set(self._running)

    def _prepare(self, chat: ChatRequest) -> GenerationRequest:
        """Worker thread: image, prompt ids, label trie, and the checks that need them."""
        from .chat import build_prompt
        from .image import preprocess

        pixels, digest = None, None
        if chat.image_url is not None:
            loaded = load_image(chat.image_url, self.policy)
            pixels = preprocess(loaded.image, self.engine.image_size, pin=self.engine.device.type == "cuda")
            digest = loaded.digest
        try:
            ids = build_prompt(self.tokenizer, chat.messages, pixels is not None)
        except ValueError as e:
            raise bad_request(str(e), "messages") from None
        try:
            self.engine.check_fits(ids, pixels is not None, chat.max_tokens)
        except ContextTooLong as e:
            raise bad_request(str(e), "messages", "context_length_exceeded") from None
        choices = None
        if chat.choices:
            choices = ChoiceTrie.from_strings(chat.choices, self.tokenizer, self.end_id)
            try:   # the answer must be a whole label: the longest one and its end must fit
                self.engine.check_fits(ids, pixels is not None, choices.longest + 1)
            except ContextTooLong as e:
                raise bad_request(f"the labels cannot fit: the longest is {choices.longest} tokens; {e}",
                                  "structured_outputs.choice", "context_length_exceeded") from None
        return GenerationRequest(
            request_id=chat.request_id, prompt_ids=ids, pixel_values=pixels, image_digest=digest,
            max_tokens=chat.max_tokens, temperature=chat.temperature, top_p=chat.top_p, seed=chat.seed,
            stop=chat.stop, choices=choices, ignore_eos=chat.ignore_eos, priority=chat.priority)

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
