"""The state of one request while it holds a KV slot."""
from __future__ import annotations

import time

import torch

from ..choice import ChoiceState
from .detok import TextAssembler
from .types import GenerationRequest, Output


class Sequence:
    def __init__(self, req: GenerationRequest, tokenizer, eos_ids: tuple[int, ...], image_tokens,
                 slot_len: int, device: torch.device):
        self.req = req
        self.id = req.request_id
        self.prompt_len = image_tokens.expanded_len(len(req.prompt_ids), req.pixel_values is not None)
        self.max_tokens = req.max_tokens if req.max_tokens is not None else slot_len - self.prompt_len
        self.choice = ChoiceState(req.choices) if req.choices is not None else None
        if self.choice is not None:  # never cut a label in half
            self.max_tokens = max(self.max_tokens, req.choices.longest + 1)
        self.max_tokens = min(self.max_tokens, slot_len - self.prompt_len)
        self.eos_ids = () if req.ignore_eos and self.choice is None else eos_ids
        self.text = TextAssembler(tokenizer, req.stop)
        self.tokens: list[int] = []
        self.cache_len = 0                      # K/V entries in the slot (expanded positions)
        self.next_position = image_tokens.position_after(len(req.prompt_ids))  # rotary position of the next token
        self.generator = None
        if req.temperature > 0:
            self.generator = torch.Generator(device=device)
            self.generator.manual_seed(req.seed if req.seed is not None else torch.seed())
        self.finish_reason: str | None = None
        self.first_token_at: float | None = None

    @property
    def greedy(self) -> bool:
        return self.req.temperature == 0

    def accept(self, token: int) -> Output:
        """Records one sampled token and returns what to tell the client."""
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        self.tokens.append(token)
        delta = ""
        if self.choice is not None:
            done = self.choice.advance(token)
            if token != self.choice.trie.end_id:
                delta = self.text.add(token)
            if done:
                self.finish_reason = "stop"
        elif token in self.eos_ids:
            self.finish_reason = "stop"
        else:
            delta = self.text.add(token)
            if self.text.stopped:
                self.finish_reason = "stop"
        if self.finish_reason is None and len(self.tokens) >= self.max_tokens:
            self.finish_reason = "length"
        if self.finish_reason is not None and not self.text.stopped:
            delta += self.text.finish()
        return self.output(delta, [token])

    def output(self, delta: str = "", token_ids: list[int] | None = None, error: str | None = None) -> Output:
        return Output(self.id, text=delta, token_ids=token_ids or [], finished=self.finish_reason is not None,
                      finish_reason=self.finish_reason, prompt_tokens=self.prompt_len,
                      completion_tokens=len(self.tokens), error=error)
