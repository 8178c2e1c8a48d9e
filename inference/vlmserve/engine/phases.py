"""Where the engine thread's time goes, per scheduler phase (for profiling runs only).

When enabled, each phase ends with a device synchronisation, so GPU work is charged to the phase that
queued it rather than to whichever later call happens to wait for it; that costs overlap, so it stays
off in serving. Disabled, `phase()` is a shared no-op context.
"""
from __future__ import annotations

import collections
import contextlib
import time

import torch

_NOTHING = contextlib.nullcontext()


class PhaseClock:
    def __init__(self, device: torch.device, enabled: bool = False):
        self.device, self.enabled = device, enabled
        self.seconds: collections.Counter[str] = collections.Counter()
        self.calls: collections.Counter[str] = collections.Counter()

    def phase(self, name: str):
        return self._timed(name) if self.enabled else _NOTHING

    @contextlib.contextmanager
    def _timed(self, name: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.seconds[name] += time.perf_counter() - t
            self.calls[name] += 1

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()

    def report(self) -> dict:
        return {name: {"seconds": self.seconds[name], "calls": self.calls[name]} for name in sorted(self.seconds)}
