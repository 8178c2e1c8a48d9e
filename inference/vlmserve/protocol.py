"""OpenAI chat-completions wire format: request validation and response shapes.

Everything a client can get wrong is caught here and turned into an `ApiError`, which the server
renders as OpenAI's error JSON. The engine only ever sees a validated `ChatRequest`.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

# Bounds on what one request may ask for: each is far above any real use and keeps the work a
# request can cause (stop-string matching per token, the choice trie, parsing) small.
MAX_STOP_STRINGS = 8
MAX_STOP_CHARS = 256
MAX_LABELS = 256
MAX_LABEL_CHARS = 256
MAX_JSON_DEPTH = 32
SEED_RANGE = (-(2**63), 2**64 - 1)        # what torch.Generator.manual_seed accepts
PRIORITY_RANGE = (-(2**31), 2**31 - 1)

# OpenAI fields this server does not implement, with the values that mean "not used" (accepted).
# Anything else is refused rather than silently ignored: a client asking for JSON mode or tool
# calls must learn that it will not get them.
UNSUPPORTED = {
    "response_format": (None, {"type": "text"}),
    "tools": (None, []),
    "tool_choice": (None, "none"),
    "functions": (None, []),
    "function_call": (None, "none"),
    "logprobs": (None, False),
    "top_logprobs": (None, 0),
    "logit_bias": (None, {}),
    "frequency_penalty": (None, 0),
    "presence_penalty": (None, 0),
    "best_of": (None, 1),
    "echo": (None, False),
    "audio": (None,),
    "prediction": (None,),
    "modalities": (None, ["text"]),
}


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
    priority: int = 0                 # vLLM's extension: lower is served first
    request_id: str = field(default_factory=lambda: "chatcmpl-" + uuid.uuid4().hex)
    created: int = field(default_factory=lambda: int(time.time()))


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _depth_over(value: Any, limit: int) -> bool:
    """True when arrays/objects nest deeper than `limit` (iterative: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def parse_json_body(raw: bytes) -> Any:
    """The request body as JSON, or an OpenAI-style 400: malformed, not UTF-8, NaN/Infinity, or
    nested deeper than MAX_JSON_DEPTH (very deep nesting would exhaust the parser's recursion)."""
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise bad_request("the request body is not UTF-8 text", code="invalid_json") from None
    except RecursionError:
        raise bad_request(f"the request body nests deeper than {MAX_JSON_DEPTH} levels", code="invalid_json") from None
    except ValueError as e:   # JSONDecodeError is a ValueError, as is a rejected NaN
        raise bad_request(f"the request body is not valid JSON: {e}", code="invalid_json") from None
    if _depth_over(body, MAX_JSON_DEPTH):
        raise bad_request(f"the request body nests deeper than {MAX_JSON_DEPTH} levels", code="invalid_json")
    return body


def _integer(body: dict, name: str, lo: int, hi: int, value: Any = None) -> int | None:
    value = body.get(name) if value is None else value
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"'{name}' must be an integer", name)
    if not lo <= value <= hi:
        raise bad_request(f"'{name}' must be between {lo} and {hi}, got {value}", name)
    return value


def _strings(values: list, what: str, param: str, max_count: int, max_chars: int) -> list[str]:
    if len(values) > max_count:
        raise bad_request(f"at most {max_count} {what} are accepted, got {len(values)}", param)
    for v in values:
        if not isinstance(v, str) or not v:
            raise bad_request(f"every {what[:-1]} must be a non-empty string", param)
        if len(v) > max_chars:
            raise bad_request(f"a {what[:-1]} may be at most {max_chars} characters, got {len(v)}", param)
    return values


def _refuse_unsupported(body: dict) -> None:
    for name, unused in UNSUPPORTED.items():
        if name in body and body[name] not in unused:
            raise bad_request(f"'{name}' is not supported by this server", name, "unsupported_parameter")


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
    return list(dict.fromkeys(_strings(choices, "labels", param, MAX_LABELS, MAX_LABEL_CHARS)))


def parse_chat_request(body: Any) -> ChatRequest:
    """Validates an OpenAI chat-completions request body (already parsed from JSON)."""
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("'model' is required", "model")
    if len(model) > 256:
        raise bad_request("'model' is longer than any model name (256 characters)", "model")
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
        raise bad_request("only n=1 is supported", "n", "unsupported_parameter")
    _refuse_unsupported(body)
    # the context check bounds it further once the prompt is known
    max_tokens = _integer(body, "max_tokens", 1, 2**31 - 1, body.get("max_completion_tokens"))
    seed = _integer(body, "seed", *SEED_RANGE)
    priority = _integer(body, "priority", *PRIORITY_RANGE) or 0

    stop = body.get("stop")
    if stop is None:
        stop = []
    elif isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list):
        raise bad_request(f"'stop' must be a string or a list of up to {MAX_STOP_STRINGS} strings", "stop")
    stop = _strings(stop, "stop strings", "stop", MAX_STOP_STRINGS, MAX_STOP_CHARS)

    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request("'stream' must be a boolean", "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise bad_request("'stream_options' must be an object", "stream_options")
    include_usage = options.get("include_usage", False)
    if not isinstance(include_usage, bool):
        raise bad_request("'stream_options.include_usage' must be a boolean", "stream_options")
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
        include_usage=include_usage,
        choices=_choices(body),
        ignore_eos=ignore_eos,
        priority=priority,
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
