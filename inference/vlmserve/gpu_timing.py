"""GPU timing: CUDA-graph replays timed with CUDA events, event-timed eager calls, and wall-clock spans.

One module for the NF4 kernel tuner (vlmserve.quant.triton_nf4 times its candidates while serving) and the
benchmark scripts under bench/. A graph of many calls replayed at once measures the GPU's work without the host's
launch overhead in between, which is what a kernel comparison needs; `event_time_us` times eager calls (launches
included, and no graph keeping every call's output alive); `wall_time_us` and `sync_time` are for spans that
should include everything the host does.
"""
from __future__ import annotations

import statistics
import time

import torch

FLUSH_BYTES = 64 << 20  # written between timed calls so each reads its weight from HBM, as a decode step does
# How the NF4 tuner times a decode-sized matmul, and the bench that compares kernels the way the tuner saw them:
# few reps and rounds (tuning runs while serving), L2 flushed between calls.
KERNEL_TIMING = dict(reps=8, rounds=3, warmup=1, flush=True)


def capturing() -> bool:
    """Whether the current stream is capturing a CUDA graph (nothing may be timed or synchronised then)."""
    return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()


def sync_time() -> float:
    """perf_counter after all queued GPU work has finished."""
    torch.cuda.synchronize()
    return time.perf_counter()


def capture(fn, reps: int = 1, warmup: int = 2, device: torch.device | None = None, thread_local: bool = False):
    """Warms `fn` up on a side stream (lazy inits and compilation stay outside the graph, as capture requires),
    then captures `reps` calls of it. Returns (graph, output of the last captured call); replaying the graph
    rewrites that output. thread_local: other threads may use CUDA meanwhile (the engine's tuner runs while the
    server's threads work)."""
    current = torch.cuda.current_stream(device)
    side = torch.cuda.Stream(device)
    side.wait_stream(current)
    with torch.cuda.stream(side):
        for _ in range(warmup):
            fn()
    current.wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    out = None
    with torch.cuda.graph(graph, capture_error_mode="thread_local" if thread_local else "global"):
        for _ in range(reps):
            out = fn()
    return graph, out


def _replay_us(graph, reps: int, rounds: int) -> float:
    graph.replay()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(rounds):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        best = min(best, start.elapsed_time(end) * 1000 / reps)
    return best


def graph_time_us(fn, reps: int = 20, rounds: int = 5, warmup: int = 3, device: torch.device | None = None,
                  flush: bool = False) -> float:
    """GPU time of one fn() call in microseconds: a graph of `reps` calls, best of `rounds` replays. With flush,
    a 64 MiB memset between calls evicts L2 and its own time (a graph of memsets alone) is subtracted."""
    def timed(body) -> float:
        graph, _ = capture(body, reps, warmup, device, thread_local=True)
        try:
            return _replay_us(graph, reps, rounds)
        finally:
            del graph

    if not flush:
        return timed(fn)
    # allocated per call, not kept: 64 MiB held for good would count against the 8 GiB batch-1 budget
    buf = torch.empty(FLUSH_BYTES, dtype=torch.uint8, device=device if device is not None else "cuda")

    def with_flush():
        buf.zero_()
        fn()

    return max(timed(with_flush) - timed(buf.zero_), 0.0)


def event_time_us(fn, iters: int = 10, warmup: int = 2) -> float:
    """Median GPU time of one eager fn() call in microseconds, by CUDA events around each call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) * 1e3)
    return statistics.median(times)


def wall_time_us(fn, reps: int = 3) -> float:
    """Best wall time of one eager fn() call in microseconds, host launch cost included (what an eager prefill
    pays)."""
    fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - t0) * 1e6)
    return best
