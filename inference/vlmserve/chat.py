"""GLM-4V chat template on token ids, in the order the official tokenizer's chat template gives.

``[gMASK]<sop>`` then, per message, the role token, "\\n", the image ids (first user message only,
when the conversation has an image) and the message text; finally ``<|assistant|>``. Building ids
directly (instead of a template string) keeps user text from ever turning into special tokens.
"""
from __future__ import annotations

from vlmserve.tokenizer import Tokenizer

ROLE_TOKENS = {"system": "<|system|>", "user": "<|user|>", "assistant": "<|assistant|>",
               "observation": "<|observation|>"}


def message_text(content) -> str:
    """A message's text: a string, or OpenAI content parts whose text parts are joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or "type" not in part:
                raise ValueError(f"message content part must be an object with a 'type': {part!r}")
            if part["type"] == "text":
                parts.append(str(part.get("text", "")))
        return "".join(parts)
    raise ValueError(f"message content must be a string or a list of parts, got {type(content).__name__}")


def image_ids(tokenizer: Tokenizer) -> list[int]:
    s = tokenizer.special
    return [s["<|begin_of_image|>"], s["<|endoftext|>"], s["<|end_of_image|>"]]


def build_prompt(tokenizer: Tokenizer, messages: list[dict], has_image: bool) -> list[int]:
    if not messages:
        raise ValueError("no messages")
    s = tokenizer.special
    newline = tokenizer.encode("\n")
    ids = [s["[gMASK]"], s["<sop>"]]
    image_placed = False
    for m in messages:
        role = m.get("role")
        if role not in ROLE_TOKENS:
            raise ValueError(f"unknown message role {role!r} (expected one of {sorted(ROLE_TOKENS)})")
        ids.append(s[ROLE_TOKENS[role]])
        ids += newline
        if has_image and role == "user" and not image_placed:
            ids += image_ids(tokenizer)
            image_placed = True
        ids += tokenizer.encode(message_text(m.get("content")))
    if has_image and not image_placed:
        raise ValueError("an image was given but there is no user message to carry it")
    ids.append(s["<|assistant|>"])
    return ids
