"""One decode step for all running sequences, optionally replayed from CUDA graphs.

At full size a decode step is ~40 layers x ~15 small kernels; launched from Python that overhead
dominates at small batches. On CUDA each (batch bucket, kv-length bucket) pair is captured once as
a graph and replayed with its inputs copied into static buffers. The CPU path runs the same code
eagerly with exact shapes.
"""
from __future__ import annotations

import logging

import torch

from .kv_cache import SlotAttention, to_device

log = logging.getLogger("vlmserve.engine")

BATCH_BUCKETS = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256)


def _bucket(n: int, buckets) -> int:
    for b in buckets:
        if b >= n:
            return b
    return buckets[-1]


class DecodeStep:
    def __init__(self, model, attn: SlotAttention, n_slots: int, slot_len: int,
                 device: torch.device, use_graphs: bool):
        self.model, self.attn = model, attn
        self.device = device
        self.use_graphs = use_graphs and device.type == "cuda"
        self.batch_buckets = tuple(b for b in BATCH_BUCKETS if b < n_slots) + (n_slots,)
        lens, s = [], 512
        while s < slot_len:
            lens.append(s)
            s *= 2
        self.len_buckets = tuple(lens) + (slot_len,)
        # The token embeddings are looked up before the graph and copied into this buffer, which the graph reads:
        # the table may live in host memory (Embedding.keep_on_host), out of a graph's reach.
        self.embeds = torch.zeros((n_slots, 1, model.config.hidden_size), dtype=model.transformer.embedding
                                  .word_embeddings.weight.dtype, device=device)
        self.positions = torch.zeros((n_slots, 1), dtype=torch.long, device=device)
        self.cache_pos = torch.zeros((n_slots,), dtype=torch.long, device=device)
        self._graphs: dict[tuple[int, int], tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self._pool = None
        # A captured kernel keeps the priority of the stream it was captured on (lower runs first): a step replayed
        # beside other work takes free multiprocessors before that work's next blocks do.
        self.capture_priority = 0

    def _forward(self, b: int, kv_len: int) -> torch.Tensor:
        self.attn.plan_decode(self.cache_pos[:b], kv_len)
        hidden = self.model.forward_embeds(self.embeds[:b], self.positions[:b], self.attn)
        return self.model.logits(hidden[:, -1])

    def run(self, ids: list[int], positions: list[int], cache_pos: list[int]) -> torch.Tensor:
        """Logits [n, vocab] for n running sequences sitting in slots 0..n-1."""
        n = len(ids)
        need = max(cache_pos) + 1
        tokens = torch.tensor(ids)[:, None]
        self.embeds[:n] = self.model.transformer.embedding.rows(tokens.pin_memory() if self.use_graphs else tokens)
        if not self.use_graphs:
            self.positions[:n, 0] = torch.tensor(positions)
            self.cache_pos[:n] = torch.tensor(cache_pos)
            return self._forward(n, need)
        b = _bucket(n, self.batch_buckets)
        kv_len = _bucket(need, self.len_buckets)
        staged = to_device([positions, cache_pos], self.device)
        self.positions[:n, 0] = staged[0]
        self.cache_pos[:n] = staged[1]
        # Rows n..b-1 are free slots: they write their (discarded) K/V at position 0 of a free slot.
        self.embeds[n:b] = 0
        self.positions[n:b] = 0
        self.cache_pos[n:b] = 0
        graph = self._graphs.get((b, kv_len))
        if graph is None:
            graph = self._capture(b, kv_len)
            if graph is None:
                return self._forward(b, kv_len)[:n]
        graph[0].replay()
        return graph[1][:n]

    def _capture(self, b: int, kv_len: int):
        try:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):  # warm-up outside the graph (lazy inits, autotuning)
                    self._forward(b, kv_len)
            torch.cuda.current_stream().wait_stream(stream)
            if self._pool is None:
                self._pool = torch.cuda.graph_pool_handle()
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self._pool, stream=torch.cuda.Stream(priority=self.capture_priority)):
                out = self._forward(b, kv_len)
        except Exception as e:  # a model op that cannot be captured: run eagerly from now on
            log.warning("CUDA graph capture failed (%s); decoding eagerly", e)
            self.use_graphs = False
            return None
        self._graphs[(b, kv_len)] = (graph, out)
        return self._graphs[(b, kv_len)]

    def warm_up(self, max_len: int | None = None) -> None:
        """Captures the graphs for every batch bucket at the given kv length (start-up, not first request)."""
        if not self.use_graphs:
            return
        kv_len = _bucket(max_len or self.len_buckets[-1], self.len_buckets)
        for b in self.batch_buckets:
            if (b, kv_len) not in self._graphs:
                self.cache_pos[:b] = 0
                self._capture(b, kv_len)
