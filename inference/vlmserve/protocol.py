"""OpenAI chat-completions wire format: request validation and response shapes.

Everything a client can get wrong is caught here and turned into an `ApiError`, which the server
renders as OpenAI's error JSON. The engine only ever sees a validated `ChatRequest`.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

MAX_STOP_STRINGS = 8


class ApiError(Exception):
    """An error the client should see, with OpenAI's fields and the HTTP status to send."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


@dataclass
class ChatRequest:
    model: str
    messages: list[dict]              # [{"role": ..., "content": text}] with the image parts removed
    image_url: str | None             # the one image of the conversation, if any
    max_tokens: int | None
    temperature: float
    top_p: float
    seed: int | None
    stop: list[str]
    stream: bool
    include_usage: bool
    choices: list[str] | None         # structured_outputs.choice / guided_choice
    ignore_eos: bool = False          # vLLM's extension; the benchmark forces lengths with it
    request_id: str = field(default_factory=lambda: "chatcmpl-" + uuid.uuid4().hex)
    created: int = field(default_factory=lambda: int(time.time()))


def _number(body: dict, name: str, default: float, lo: float, hi: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_request(f"'{name}' must be a number", name)
    if not lo <= value <= hi:
        raise bad_request(f"'{name}' must be between {lo} and {hi}, got {value}", name)
    return float(value)


def _content_parts(content: Any, index: int) -> tuple[str, list[str]]:
    """Splits one message's content into its text and its image URLs."""
    param = f"messages[{index}].content"
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        raise bad_request("message content must be a string or a list of content parts", param)
    texts, images = [], []
    for part in content:
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise bad_request("each content part must be an object with a 'type'", param)
        kind = part["type"]
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise bad_request("a text part needs a string 'text'", param)
            texts.append(part["text"])
        elif kind == "image_url":
            ref = part.get("image_url")
            url = ref.get("url") if isinstance(ref, dict) else ref
            if not isinstance(url, str) or not url:
                raise bad_request("an image_url part needs 'image_url': {'url': ...}", param)
            images.append(url)
        else:
            raise bad_request(f"unsupported content part type '{kind}' (supported: text, image_url)", param)
    return "".join(texts), images


def _choices(body: dict) -> list[str] | None:
    structured = body.get("structured_outputs")
    choices, param = None, None
    if structured is not None:
        if not isinstance(structured, dict):
            raise bad_request("'structured_outputs' must be an object", "structured_outputs")
        unsupported = sorted(set(structured) - {"choice"})
        if unsupported:
            raise bad_request(f"structured_outputs supports only 'choice', got {unsupported}", "structured_outputs")
        choices, param = structured.get("choice"), "structured_outputs.choice"
    if choices is None and body.get("guided_choice") is not None:
        choices, param = body["guided_choice"], "guided_choice"
    if choices is None:
        return None
    if not isinstance(choices, list) or not choices:
        raise bad_request("the choice list must be a non-empty list of strings", param)
    if not all(isinstance(c, str) and c for c in choices):
        raise bad_request("every choice must be a non-empty string", param)
    return list(dict.fromkeys(choices))


def parse_chat_request(body: Any) -> ChatRequest:
    """Validates an OpenAI chat-completions request body (already parsed from JSON)."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required", "model")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise bad_request("'messages' must be a non-empty list", "messages")

    messages, images = [], []
    for i, msg in enumerate(raw_messages):
        if not isinstance(msg, dict):
            raise bad_request("each message must be an object", f"messages[{i}]")
        role = msg.get("role")
        if role not in ("system", "user", "assistant"):
            raise bad_request(f"unsupported role {role!r} (supported: system, user, assistant)", f"messages[{i}].role")
        text, urls = _content_parts(msg.get("content"), i)
        if urls and role != "user":
            raise bad_request("images are only accepted in user messages", f"messages[{i}].content")
        images.extend(urls)
        messages.append({"role": role, "content": text})
    if len(images) > 1:
        raise bad_request(f"GLM-4V takes at most 1 image per conversation, got {len(images)}",
                          "messages", "too_many_images")
    if messages[-1]["role"] == "assistant":
        raise bad_request("the last message must not be from the assistant", "messages")

    n = body.get("n", 1)
    if n != 1:
        raise bad_request("only n=1 is supported", "n")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise bad_request("'max_tokens' must be a positive integer", "max_tokens")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise bad_request("'seed' must be an integer", "seed")

    stop = body.get("stop")
    if stop is None:
        stop = []
    elif isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop) or len(stop) > MAX_STOP_STRINGS:
        raise bad_request(f"'stop' must be a non-empty string or a list of up to {MAX_STOP_STRINGS} of them", "stop")

    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request("'stream' must be a boolean", "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise bad_request("'stream_options' must be an object", "stream_options")
    ignore_eos = body.get("ignore_eos", False)
    if not isinstance(ignore_eos, bool):
        raise bad_request("'ignore_eos' must be a boolean", "ignore_eos")

    return ChatRequest(
        model=model,
        messages=messages,
        image_url=images[0] if images else None,
        max_tokens=max_tokens,
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 1e-6, 1.0),
        seed=seed,
        stop=stop,
        stream=stream,
        include_usage=bool(options.get("include_usage", False)),
        choices=_choices(body),
        ignore_eos=ignore_eos,
    )


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def completion_body(req: ChatRequest, text: str, finish_reason: str, prompt_tokens: int,
                    completion_tokens: int) -> dict:
    return {
        "id": req.request_id,
        "object": "chat.completion",
        "created": req.created,
        "model": req.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage(prompt_tokens, completion_tokens),
    }


def chunk_body(req: ChatRequest, delta: dict, finish_reason: str | None = None,
               usage_counts: dict | None = None, with_choice: bool = True) -> dict:
    body = {"id": req.request_id, "object": "chat.completion.chunk", "created": req.created,
            "model": req.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
            if with_choice else []}
    if usage_counts is not None:
        body["usage"] = usage_counts
    return body


def models_body(names: list[str], created: int) -> dict:
    return {"object": "list",
            "data": [{"id": n, "object": "model", "created": created, "owned_by": "vlmserve"} for n in names]}
