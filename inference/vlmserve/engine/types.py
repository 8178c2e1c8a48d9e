"""What goes into the engine and what comes out of it."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..choice import ChoiceTrie


class Overloaded(Exception):
    """Admission refused: every KV slot is taken and the waiting line is full (HTTP 429)."""


@dataclass
class EngineConfig:
    max_batch: int = 64                 # sequence slots in the preallocated KV cache
    slot_len: int | None = None         # tokens per slot (expanded: an image counts as its vectors); None = model max
    kv_budget_tokens: int | None = None  # caps max_batch * slot_len; None = memory_plan.engine_plan on GPU
    max_waiting: int | None = None      # requests allowed to wait for a slot before 429; None = 4 x slots
    prefix_cache: bool = True           # share image embeddings and image-prefix KV by content hash
    prefix_cache_entries: int = 16      # image prefixes kept for later requests
    image_cache_entries: int = 32       # vision embeddings kept for later requests
    vision_batch: int = 8               # images per vision-tower micro-batch
    prefill_tokens: int = 16384         # tokens per prefill micro-batch
    max_prefill_requests: int = 64      # requests admitted per scheduler round (decode waits meanwhile)
    # Prefill work per scheduler round, so that running sequences get a decode step between bounded
    # pieces of prefill and a new request waits for a few images, not for every queued one. The first
    # waiting request is always admitted, whatever its size.
    # 4, not 8: measured on an H100 at c=64 (bench/gpu_session.sh rounds), TTFT p50 1.61 s against 3.16 s for
    # 0.99x the images/s
    round_images: int = 4               # new images (vision tower + image prefix) per round
    round_tokens: int = 16384           # prompt tokens prefilled per round (images counted expanded)
    cuda_graphs: bool = True            # only used on CUDA


@dataclass
class GenerationRequest:
    request_id: str
    prompt_ids: list[int]               # unexpanded: the image is its 3 ids
    pixel_values: torch.Tensor | None   # [3, S, S] float32 on CPU, already preprocessed
    image_digest: str | None
    max_tokens: int | None
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    choices: ChoiceTrie | None = None
    ignore_eos: bool = False
    priority: int = 0                   # lower is served first (vLLM's convention); ties in arrival order
    sink: Callable[["Output"], None] | None = None   # called on the engine thread
    # Called on the engine thread at the end of a scheduler round that gave `sink` outputs, once per round for
    # all requests sharing it: the server wakes its event loop there, once for the round's outputs.
    flush: Callable[[], None] | None = None
    arrival: float = field(default_factory=time.perf_counter)


@dataclass
class Output:
    request_id: str
    text: str = ""                       # new text since the previous Output
    token_ids: list[int] = field(default_factory=list)
    finished: bool = False
    finish_reason: str | None = None     # "stop" | "length" | "abort" | "error"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
