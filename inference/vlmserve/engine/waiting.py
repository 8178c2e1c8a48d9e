"""The line of requests waiting for a KV slot, in serving order.

Order: lower `priority` first (vLLM's convention: an interactive request sent with a negative priority
overtakes queued batch work at priority 0), then arrival order. Nothing that has started is ever
preempted: priority only decides who gets the next free slot and the next prefill round.
"""
from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator

from .types import GenerationRequest


class WaitingLine:
    def __init__(self):
        self._heap: list[tuple[int, int, GenerationRequest]] = []
        self._order = itertools.count()

    def push(self, req: GenerationRequest) -> None:
        heapq.heappush(self._heap, (req.priority, next(self._order), req))

    def peek(self) -> GenerationRequest:
        return self._heap[0][2]

    def pop(self) -> GenerationRequest:
        return heapq.heappop(self._heap)[2]

    def remove(self, request_ids: set[str]) -> list[GenerationRequest]:
        """Takes out the requests with these ids; returns them."""
        gone = [e[2] for e in self._heap if e[2].request_id in request_ids]
        if gone:
            self._heap = [e for e in self._heap if e[2].request_id not in request_ids]
            heapq.heapify(self._heap)
        return gone

    def __len__(self) -> int:
        return len(self._heap)

    def __bool__(self) -> bool:
        return bool(self._heap)

    def __iter__(self) -> Iterator[GenerationRequest]:
        """In serving order."""
        return (e[2] for e in sorted(self._heap, key=lambda e: e[:2]))
