"""The asyncio side of the engine: submit a request, then iterate over its outputs."""
from __future__ import annotations

import asyncio
from typing import AsyncIterator

from .engine import Engine
from .types import GenerationRequest, Output


def submit(engine: Engine, req: GenerationRequest) -> AsyncIterator[Output]:
    """Queues `req` now (raising Overloaded at once when admission is refused) and returns an async
    iterator over its outputs; the last one has finished=True. Leaving the iteration early (client
    gone) aborts the request. Call from the event loop's thread."""
    loop = asyncio.get_running_loop()
    outputs: asyncio.Queue[Output] = asyncio.Queue()
    req.sink = lambda out: loop.call_soon_threadsafe(outputs.put_nowait, out)
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
