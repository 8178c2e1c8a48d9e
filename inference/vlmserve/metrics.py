"""Prometheus text-format metrics, written by the engine thread and read by GET /metrics.

Small on purpose (no client library): counters, gauges and one histogram kind, each guarded by a
lock because the engine thread and the HTTP thread touch them at the same time.
"""
from __future__ import annotations

import threading
from typing import Callable

PREFIX = "vlmserve_"


class _Metric:
    kind = ""

    def __init__(self, name: str, help: str):
        self.name = PREFIX + name
        self.help = help
        self._lock = threading.Lock()

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help: str):
        super().__init__(name, help)
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        with self._lock:
            self.value += amount

    def render(self) -> list[str]:
        return self.header() + [f"{self.name} {self.value:g}"]


class Gauge(_Metric):
    kind = "gauge"

    def __init__(self, name: str, help: str, read: Callable[[], float] | None = None):
        super().__init__(name, help)
        self.value = 0.0
        self._read = read

    def set(self, value: float) -> None:
        self.value = value

    def render(self) -> list[str]:
        value = self._read() if self._read else self.value
        return self.header() + [f"{self.name} {value:g}"]


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help: str, buckets: list[float]):
        super().__init__(name, help)
        self.buckets = sorted(buckets)
        self.counts = [0] * len(self.buckets)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        with self._lock:
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    self.counts[i] += 1
            self.total += 1
            self.sum += value

    def render(self) -> list[str]:
        with self._lock:
            lines = self.header()
            for bound, count in zip(self.buckets, self.counts):
                lines.append(f'{self.name}_bucket{{le="{bound:g}"}} {count}')
            lines.append(f'{self.name}_bucket{{le="+Inf"}} {self.total}')
            lines.append(f"{self.name}_sum {self.sum:g}")
            lines.append(f"{self.name}_count {self.total}")
        return lines


class HttpMetrics:
    """The HTTP side's own figures: request preparation (image decoding, tokenizing) runs in a bounded
    worker pool, and these show how busy it is."""

    def __init__(self):
        self.prep_running = Gauge("prep_running", "Requests being prepared (image decoding, tokenizing) now")
        self.prep_running_peak = Gauge("prep_running_peak", "Most requests ever prepared at the same time")
        self.prep_waiting = Gauge("prep_waiting", "Requests waiting for a preparation worker")
        self.client_disconnects = Counter("client_disconnects_total", "Requests whose client went away before the answer")

    def render(self) -> str:
        lines: list[str] = []
        for metric in vars(self).values():
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"


def _gpu_memory(kind: str) -> Callable[[], float]:
    def read() -> float:
        import torch

        if not torch.cuda.is_available():
            return 0.0
        return float(torch.cuda.memory_allocated() if kind == "allocated" else torch.cuda.max_memory_allocated())
    return read


class EngineMetrics:
    def __init__(self):
        self.queue_depth = Gauge("queue_depth", "Requests waiting for a sequence slot")
        self.running = Gauge("running_sequences", "Sequences holding a KV slot")
        self.batch_size = Histogram("decode_batch_size", "Sequences per decode step",
                                    [1, 2, 4, 8, 16, 32, 48, 64, 96, 128, 256])
        self.prefill_batch = Histogram("prefill_batch_size", "Requests per prefill batch", [1, 2, 4, 8, 16, 32, 64])
        self.prompt_tokens = Counter("prompt_tokens_total", "Prompt tokens admitted (image counted as its 3 ids)")
        self.generation_tokens = Counter("generation_tokens_total", "Tokens generated")
        self.images_encoded = Counter("images_encoded_total", "Images run through the vision tower")
        self.image_cache_hits = Counter("image_cache_hits_total", "Image embeddings reused by content hash")
        self.prefix_cache_hits = Counter("prefix_cache_hits_total", "Requests whose image prefix KV was reused")
        self.prefix_cache_misses = Counter("prefix_cache_misses_total", "Image prefixes computed")
        self.requests_finished = Counter("requests_finished_total", "Requests finished")
        self.requests_rejected = Counter("requests_rejected_total", "Requests refused because the KV budget was full")
        self.requests_aborted = Counter("requests_aborted_total", "Requests ended because their client went away")
        self.ttft = Histogram("time_to_first_token_seconds", "Time from admission request to first token",
                              [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60])
        self.gpu_allocated = Gauge("gpu_memory_allocated_bytes", "GPU memory allocated by torch",
                                   _gpu_memory("allocated"))
        self.gpu_peak = Gauge("gpu_memory_peak_bytes", "Peak GPU memory allocated by torch", _gpu_memory("peak"))
        self.kv_slots = Gauge("kv_slots", "Sequence slots in the preallocated KV cache")

    def all(self) -> list[_Metric]:
        return [m for m in vars(self).values() if isinstance(m, _Metric)]

    def render(self) -> str:
        lines: list[str] = []
        for metric in self.all():
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"
