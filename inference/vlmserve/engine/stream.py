"""The asyncio side of the engine: submit a request, then iterate over its outputs."""
from __future__ import annotations

import asyncio
import threading
import weakref
from typing import AsyncIterator

from .engine import Engine
from .types import GenerationRequest, Output


class _Mailbox:
    """Outputs from the engine thread bound for one event loop, handed over once per scheduler round (the
    engine calls `flush` at the end of each). Waking a loop from another thread writes to its self-pipe, a
    system call: done per output it was most of the engine's CPU per decode round at 64 sequences
    (bench/step_overhead.py)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._lock = threading.Lock()
        self._items: list[tuple[asyncio.Queue, Output]] = []
        self._scheduled = False

    def post(self, queue: asyncio.Queue, out: Output) -> None:
        with self._lock:
            self._items.append((queue, out))

    def flush(self) -> None:
        with self._lock:
            if not self._items or self._scheduled:
                return
            self._scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._deliver)
        except RuntimeError:   # the loop is closed: nobody is left to read
            with self._lock:
                self._scheduled = False
                self._items.clear()
            raise

    def _deliver(self) -> None:
        with self._lock:
            items, self._items = self._items, []
            self._scheduled = False
        for queue, out in items:   # in posting order, so each request's outputs stay in order
            queue.put_nowait(out)


_mailboxes: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Mailbox]" = weakref.WeakKeyDictionary()


def _mailbox(loop: asyncio.AbstractEventLoop) -> _Mailbox:
    box = _mailboxes.get(loop)   # only the loop's own thread gets here (submit), so no two make one at once
    if box is None:
        box = _mailboxes[loop] = _Mailbox(loop)
    return box


def submit(engine: Engine, req: GenerationRequest) -> AsyncIterator[Output]:
    """Queues `req` now (raising Overloaded at once when admission is refused) and returns an async
    iterator over its outputs; the last one has finished=True. Leaving the iteration early (client
    gone) aborts the request. Call from the event loop's thread."""
    loop = asyncio.get_running_loop()
    outputs: asyncio.Queue[Output] = asyncio.Queue()
    box = _mailbox(loop)
    req.sink = lambda out: box.post(outputs, out)
    req.flush = box.flush
    engine.submit(req)

    async def results() -> AsyncIterator[Output]:
        finished = False
        try:
            while not finished:
                out = await outputs.get()
                finished = out.finished
                yield out
        finally:
            if not finished:
                engine.abort(req.request_id)

    return results()
