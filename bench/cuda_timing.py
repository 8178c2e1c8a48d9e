"""GPU timing for the benchmark scripts: CUDA-graph capture and replay timed with CUDA events.

A graph of many calls replayed once measures the GPU's work without the host's launch overhead in
between, which is what a kernel comparison needs; `sync_time` is for wall-clock spans that should
include everything."""
from __future__ import annotations

import time

import torch


def sync_time() -> float:
    """perf_counter after all queued GPU work has finished."""
    torch.cuda.synchronize()
    return time.perf_counter()


def capture(fn, reps: int = 1, warmup: int = 2):
    """Warms `fn` up on a side stream (as graph capture requires), then captures `reps` calls of it.
    Returns (graph, output of the last captured call); replaying the graph rewrites that output."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    out = None
    with torch.cuda.graph(graph):
        for _ in range(reps):
            out = fn()
    return graph, out


def graph_time_us(fn, reps: int = 20, rounds: int = 5, warmup: int = 3) -> float:
    """GPU time of one call of `fn` in microseconds: a graph of `reps` calls, best of `rounds` replays."""
    graph, _ = capture(fn, reps, warmup)
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
