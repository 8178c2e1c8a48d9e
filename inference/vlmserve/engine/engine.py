"""The serving engine: one background thread that keeps the GPU busy.

Each scheduler round:
  1. take new requests in priority order, up to the free KV slots and a bounded amount of prefill work
     (the rest wait; too many waiting -> Overloaded), so running sequences keep decoding and a new
     request waits for a few images, not for every queued one;
  2. prefill them as a batch: images not seen before go through the vision tower in micro-batches,
     each distinct image prefix ([gMASK]<sop><|user|>\\n + image) is prefilled once, together with the
     text of the request that brought it, and its KV copied to every other request that shares it (and
     kept for later ones); then those other requests' own texts are prefilled together, and each
     request gets its first token;
  3. one decode step for every running sequence (CUDA-graph replay on GPU); finished sequences
     leave their slot at once, so the next round's waiting requests can take it.
Results go out through each request's `sink` callback, called on this thread, and are handed to the event loops
(`flush`) once the next prefill or decode step is queued on the GPU, or at the end of a round when nothing runs.
"""
from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Callable

import torch

from .decode_step import DecodeStep
from .kv_cache import PrefixStore, SlotAttention, SlotKVCache, to_device
from .memory_plan import SMALL_CARD, PlanError, engine_slot_len, fit_engine_config, measure_device, prefix_entry_len
from .phases import PhaseClock
from .sequence import Sequence
from .types import EngineConfig, GenerationRequest, Output, Overloaded
from .waiting import WaitingLine
from ..metrics import EngineMetrics
from ..quant.fp8 import prepare_fp8
from ..quant.linear import prepare_nf4

log = logging.getLogger("vlmserve.engine")


class ContextTooLong(ValueError):
    pass


@dataclass
class _Split:
    """A request's prompt cut after the image: the shared part and the request's own text."""
    key: tuple | None          # prefix identity; None when there is no image
    prefix_ids: list[int]
    suffix_ids: list[int]


def _split(req: GenerationRequest, image_tokens) -> _Split:
    if req.pixel_values is None:
        return _Split(None, [], list(req.prompt_ids))
    prefix, suffix = image_tokens.split(req.prompt_ids)
    return _Split((req.image_digest, tuple(prefix)), prefix, suffix)


class LRU:
    def __init__(self, capacity: int):
        self.capacity = capacity
        self._data: collections.OrderedDict = collections.OrderedDict()

    def get(self, key):
        if key in self._data:
            self._data.move_to_end(key)
            return self._data[key]
        return None

    def put(self, key, value) -> None:
        if self.capacity <= 0:
            return
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.capacity:
            self._data.popitem(last=False)


class Engine:
    def __init__(self, model, tokenizer, config: EngineConfig | None = None,
                 metrics: EngineMetrics | None = None):
        self.model, self.tokenizer = model, tokenizer
        self.cfg = model.config
        self.config = config or EngineConfig()
        self.metrics = metrics or EngineMetrics()
        self.device = model.device
        # The compute dtype; with NF4 the linear weights are packed bytes, the embeddings are not.
        self.dtype = model.transformer.embedding.word_embeddings.weight.dtype
        self.n_vision = self.cfg.n_vision_embeds
        self.eos_ids = tuple(self.cfg.eos_token_ids)
        self.image_size = self.cfg.vision.image_size

        c = self.config
        per_token = SlotKVCache.bytes_per_token(self.cfg.num_layers, self.cfg.n_kv_heads, self.cfg.head_dim, self.dtype)
        self.slot_len = engine_slot_len(self.cfg, c)
        if self.device.type == "cuda":
            prepare_nf4(model)   # layout and scratch settled before the plan: it must see them
            prepare_fp8(model)
        if c.kv_budget_tokens is not None:
            n_slots = max(1, min(c.max_batch, c.kv_budget_tokens // self.slot_len))
        elif self.device.type == "cuda":
            try:
                fitted, plan, shrunk = fit_engine_config(self.cfg, c, self.dtype, measure_device(self.device),
                                                         model.vision.transformer.layers[0].mlp.chunk_tokens())
            except PlanError as e:
                raise PlanError(f"{e} (or give the KV cache's size: kv_budget_tokens, --kv-budget-tokens)") from None
            if shrunk:
                log.warning("the configured micro-batches leave no KV slot on this card: serving with the small-card "
                            "settings (%s)", ", ".join(f"{k}={getattr(fitted, k)}" for k in SMALL_CARD))
                self.config = c = fitted
                self.slot_len = engine_slot_len(self.cfg, c)
            log.info("memory plan:\n%s", plan.table())
            n_slots = plan.slots
        else:
            n_slots = c.max_batch
        self.cache = SlotKVCache(self.cfg.num_layers, n_slots, self.slot_len, self.cfg.n_kv_heads,
                                 self.cfg.head_dim, self.dtype, self.device)
        self.prefix_store = PrefixStore(self.cache, c.prefix_cache_entries if c.prefix_cache else 0,
                                        prefix_entry_len(self.cfg))
        self.image_cache = LRU(c.image_cache_entries if c.prefix_cache else 0)
        self.attn = SlotAttention(self.cache)
        self.decoder = DecodeStep(model, self.attn, n_slots, self.slot_len,
                                  self.device, c.cuda_graphs)
        self.max_waiting = c.max_waiting if c.max_waiting is not None else 4 * n_slots
        self.metrics.kv_slots.set(n_slots)
        log.info("KV cache: %d slots x %d tokens (%.2f GiB)", n_slots, self.slot_len,
                 n_slots * self.slot_len * per_token / 2**30)

        self.clock = PhaseClock(self.device)   # bench/serve_profile.py enables it
        self._inbox: queue.Queue = queue.Queue()
        self._waiting = WaitingLine()
        self._pending = 0                  # submitted, not yet admitted (inbox + waiting)
        self._pending_lock = threading.Lock()
        self._aborted: set[str] = set()
        self._flushes: set[Callable[[], None]] = set()   # to call at the end of this round
        self.running: list[Sequence] = []  # running[i] holds slot i
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # ---- public API (any thread) ------------------------------------------------------------
    @property
    def n_slots(self) -> int:
        return self.cache.n_slots

    def prompt_len(self, prompt_ids: list[int], has_image: bool) -> int:
        return self.model.image_tokens.expanded_len(len(prompt_ids), has_image)

    def check_fits(self, prompt_ids: list[int], has_image: bool, max_tokens: int | None) -> None:
        n = self.prompt_len(prompt_ids, has_image)
        want = n + (max_tokens or 1)
        if want > self.slot_len:
            extra = f" + {max_tokens} new tokens" if max_tokens else ""
            raise ContextTooLong(f"this model's context length is {self.slot_len} tokens; the prompt is {n} "
                                 f"tokens{' (the image counts as ' + str(self.n_vision) + ')' if has_image else ''}"
                                 f"{extra} = {want}")

    def submit(self, req: GenerationRequest) -> None:
        """Queues a request; raises Overloaded when too many are already waiting."""
        with self._pending_lock:
            free = self.n_slots - len(self.running)
            if self._pending - free >= self.max_waiting:
                self.metrics.requests_rejected.inc()
                raise Overloaded(
                    f"server is at capacity: all {self.n_slots} KV cache slots ({self.n_slots * self.slot_len} "
                    f"tokens) are in use and {self._pending} requests are waiting; retry later")
            self._pending += 1
        self._inbox.put(req)

    def abort(self, request_id: str) -> None:
        self._aborted.add(request_id)
        self._inbox.put(None)  # wake the loop

    def start(self) -> "Engine":
        self._thread = threading.Thread(target=self._loop, name="vlmserve-engine", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._inbox.put(None)
        if self._thread is not None:
            self._thread.join(timeout=30)

    # ---- scheduler loop (engine thread) -------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_round(block=not self.running and not self._waiting)

    def run_round(self, block: bool = False) -> None:
        """One scheduler round: take in new requests, prefill those admitted, one decode step. The engine thread
        calls it in a loop (blocking for work only when idle); bench/step_overhead.py calls it directly."""
        self._drain(block)
        self._drop_aborted()
        admitted: list[GenerationRequest] = []
        try:
            with torch.inference_mode():
                with self.clock.phase("admit"):
                    admitted = self._admit()
                if admitted:
                    self._prefill(admitted)
                admitted = []
                if self.running:
                    self._decode()
        except Exception as e:  # noqa: BLE001 - one bad batch must not take the server down
            log.exception("engine step failed")
            self._fail_all(f"internal error in the engine: {e}", admitted)
        if not self.running:
            self._flush()        # else the next round's first GPU work carries this round's outputs out
        self.metrics.queue_depth.set(len(self._waiting))
        self.metrics.running.set(len(self.running))

    def _flush(self) -> None:
        flushes, self._flushes = self._flushes, set()
        for flush in flushes:
            try:
                flush()
            except Exception:  # noqa: BLE001 - a client side gone must not stop the engine
                log.exception("output flush failed")

    def _drain(self, block: bool) -> None:
        try:
            item = self._inbox.get(timeout=0.5) if block else self._inbox.get_nowait()
            while True:
                if item is not None:
                    self._waiting.push(item)
                item = self._inbox.get_nowait()
        except queue.Empty:
            pass

    def _drop_aborted(self) -> None:
        if not self._aborted:
            return
        aborted, self._aborted = self._aborted, set()
        for req in self._waiting.remove(aborted):
            self._unpend()
            self.metrics.requests_aborted.inc()
            self._emit(req, Output(req.request_id, finished=True, finish_reason="abort"))
        done = [i for i, s in enumerate(self.running) if s.id in aborted]
        self.metrics.requests_aborted.inc(len(done))
        for i in done:
            seq = self.running[i]
            seq.finish_reason = "abort"
            self._emit(seq.req, seq.output())
        self._release(done)

    def _unpend(self, n: int = 1) -> None:
        with self._pending_lock:
            self._pending -= n

    def _emit(self, req: GenerationRequest, out: Output) -> None:
        if req.sink is not None:
            try:
                req.sink(out)
            except Exception:  # noqa: BLE001 - a broken client must not stop the engine
                log.exception("output sink failed for %s", req.request_id)
        if req.flush is not None:
            self._flushes.add(req.flush)   # a bound method: equal for every request of one event loop

    def _fail_all(self, message: str, admitted: list[GenerationRequest] = ()) -> None:
        """Ends every running sequence, and every request admitted by a prefill that broke before
        its sequences joined `running`, with the error: none is left without an answer."""
        for seq in self.running:
            seq.finish_reason = "error"
            self._emit(seq.req, seq.output(error=message))
        in_running = {id(seq.req) for seq in self.running}
        for req in admitted:
            if id(req) not in in_running:
                self._emit(req, Output(req.request_id, finished=True, finish_reason="error", error=message))
        self.running = []
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _admit(self) -> list[GenerationRequest]:
        """Waiting requests for this round, in serving order, within the free slots and the round's
        prefill budget (new images and prompt tokens); the first one always fits."""
        c = self.config
        take = min(self.n_slots - len(self.running), c.max_prefill_requests)
        admitted: list[GenerationRequest] = []
        new_prefixes: set[tuple] = set()
        tokens = 0
        while self._waiting and len(admitted) < take:
            req = self._waiting.peek()
            split = _split(req, self.model.image_tokens)
            fresh = (split.key is not None and c.prefix_cache and split.key not in new_prefixes
                     and split.key not in self.prefix_store)
            if not c.prefix_cache and split.key is not None:
                fresh, cost = True, self.prompt_len(req.prompt_ids, True)
            elif fresh:
                cost = self.prompt_len(req.prompt_ids, True)
            else:
                cost = len(split.suffix_ids)
            if admitted and (tokens + cost > c.round_tokens
                             or (fresh and len(new_prefixes) + 1 > c.round_images)):
                break
            self._waiting.pop()
            admitted.append(req)
            tokens += cost
            if fresh:
                new_prefixes.add(split.key if c.prefix_cache else (req.request_id,))
        if admitted:
            self._unpend(len(admitted))
        return admitted

    # ---- prefill ------------------------------------------------------------------------------
    def _prefill(self, reqs: list[GenerationRequest]) -> None:
        seqs = []
        for req in reqs:
            seq = Sequence(req, self.tokenizer, self.eos_ids, self.model.image_tokens, self.slot_len, self.device)
            seqs.append(seq)
            self.metrics.prompt_tokens.inc(seq.prompt_len)
        base = len(self.running)
        slots = list(range(base, base + len(seqs)))
        self.metrics.prefill_batch.observe(len(seqs))
        splits = [_split(r, self.model.image_tokens) for r in reqs]

        if self.config.prefix_cache:
            starts, done = self._prefill_prefixes(reqs, splits, slots)
            position_after = self.model.image_tokens.position_after
            rest = [i for i in range(len(reqs)) if i not in done]
            if rest:
                rows = [(splits[i].suffix_ids, position_after(len(splits[i].prefix_ids)), starts[i]) for i in rest]
                with self.clock.phase("prefill_text"):
                    text = self._prefill_text(rows, [slots[i] for i in rest])
                done.update(zip(rest, text))
            hidden_last = torch.stack([done[i] for i in range(len(reqs))])
        else:
            hidden_last = self._prefill_whole(reqs, slots)
        self._flush()    # the vision tower and the prefill are queued on the GPU: hand earlier outputs over now

        logits = self.model.logits(hidden_last)
        for seq in seqs:
            seq.cache_len = seq.prompt_len
        self.running.extend(seqs)
        with self.clock.phase("sample_emit"):
            self._sample_and_emit(seqs, logits, first_slot=base)

    def _vision(self, reqs: list[GenerationRequest]) -> dict[str, torch.Tensor]:
        """Vision embeddings for the distinct images of `reqs`, from the cache or the tower."""
        out: dict[str, torch.Tensor] = {}
        todo: dict[str, torch.Tensor] = {}
        for r in reqs:
            if r.pixel_values is None or r.image_digest in out or r.image_digest in todo:
                continue
            hit = self.image_cache.get(r.image_digest)
            if hit is not None:
                out[r.image_digest] = hit
                self.metrics.image_cache_hits.inc()
            else:
                todo[r.image_digest] = r.pixel_values
        keys = list(todo)
        for i in range(0, len(keys), self.config.vision_batch):
            chunk = keys[i:i + self.config.vision_batch]
            # image by image: a request's pinned pixels go up asynchronously, where a stacked copy on the host would
            # be pageable, copied while the engine thread waits (~1.5 ms per 1120px image in float32)
            pixels = torch.stack([todo[k].to(self.device, non_blocking=True) for k in chunk])
            embeds = self.model.encode_images(pixels)
            self.metrics.images_encoded.inc(len(chunk))
            for k, e in zip(chunk, embeds):
                out[k] = e
                self.image_cache.put(k, e)
        return out

    def _prefill_prefixes(self, reqs, splits: list[_Split], slots: list[int]) -> tuple[list[int], dict]:
        """Puts every request's image prefix into its slot. The request that computes a new prefix is prefilled
        whole in that pass (prefix and its own text: causal, so the prefix's K/V are the same), which spares it a
        second pass over the 40 layers for a few dozen tokens. Returns where each request's own text starts, and
        the last hidden state of each request prefilled whole, by index."""
        starts = [0] * len(reqs)
        whole: dict[int, torch.Tensor] = {}
        owner: dict[tuple, int] = {}           # prefix key -> index of the request that computes it
        for i, s in enumerate(splits):
            if s.key is None:
                continue
            if s.key in owner:
                self.metrics.prefix_cache_hits.inc()
            elif self.prefix_store.lookup(s.key) is not None:
                # load now: saving this batch's new prefixes below may evict the entry
                starts[i] = self.prefix_store.load(s.key, self.cache, slots[i])
                self.metrics.prefix_cache_hits.inc()
            else:
                owner[s.key] = i
                self.metrics.prefix_cache_misses.inc()
        if owner:
            with self.clock.phase("vision"):
                vision = self._vision([reqs[i] for i in owner.values()])
            todo = list(owner.values())
            length = {i: self.prompt_len(reqs[i].prompt_ids, True) for i in todo}
            step = max(1, self.config.prefill_tokens // max(length.values()))
            for j in range(0, len(todo), step):
                chunk = todo[j:j + step]
                embeds, positions = self._embed_rows(
                    [reqs[i].prompt_ids for i in chunk], [vision[reqs[i].image_digest] for i in chunk])
                self.attn.plan_prefill([slots[i] for i in chunk], [0] * len(chunk))
                with self.clock.phase("prefill_prefix"):
                    hidden = self.model.forward_embeds(embeds, positions, self.attn)
                    whole.update(zip(chunk, self._last_hidden(hidden, [length[i] for i in chunk])))
        for i, s in enumerate(splits):
            if s.key in owner:
                starts[i] = self.prompt_len(s.prefix_ids, True)
                if owner[s.key] != i:
                    self.cache.move(slots[owner[s.key]], slots[i], starts[i])
        for key, i in owner.items():
            self.prefix_store.save(key, self.cache, slots[i], starts[i])
        return starts, whole

    def _embed_rows(self, id_rows: list[list[int]], vision: list[torch.Tensor] | None,
                    positions: list[list[int]] | None = None):
        """Right-padded batch of prompts -> (embeds, positions). Rows with an image must share a length
        before the image (true for one chat template); after it they may differ."""
        width = max(len(r) for r in id_rows)
        pad = self.cfg.pad_token_id
        ids = torch.full((len(id_rows), width), pad, dtype=torch.long)
        pos = torch.zeros((len(id_rows), width), dtype=torch.long)
        for b, row in enumerate(id_rows):
            ids[b, :len(row)] = torch.tensor(row)
            if positions is None:
                pos[b, :len(row)] = torch.arange(len(row))
            else:
                pos[b, :len(row)] = torch.tensor(positions[b])
            pos[b, len(row):] = pos[b, len(row) - 1] if row else 0
        v = torch.stack(vision) if vision else None
        return self.model.embed(ids, v, pos)   # host ids: no GPU synchronisation for the splice, none for a host table

    def _prefill_text(self, rows: list[tuple[list[int], int, int]], slots: list[int]) -> torch.Tensor:
        """Prefills each row's own tokens after its (already cached) prefix. rows: (ids, first unexpanded
        position, cache start). Returns the last real token's hidden state per row."""
        out = []
        width = max(len(r[0]) for r in rows)
        step = max(1, self.config.prefill_tokens // max(width, 1))
        for j in range(0, len(rows), step):
            chunk = rows[j:j + step]
            embeds, positions = self._embed_rows(
                [r[0] for r in chunk], None, [list(range(r[1], r[1] + len(r[0]))) for r in chunk])
            self.attn.plan_prefill(slots[j:j + len(chunk)], [r[2] for r in chunk])
            hidden = self.model.forward_embeds(embeds, positions, self.attn)
            out.append(self._last_hidden(hidden, [len(r[0]) for r in chunk]))
        return torch.cat(out)

    def _last_hidden(self, hidden: torch.Tensor, lengths: list[int]) -> torch.Tensor:
        """Each right-padded row's hidden state at its last real token: [rows, T, H], lengths -> [rows, H]."""
        last = to_device([n - 1 for n in lengths], self.device)
        return hidden[torch.arange(len(lengths), device=self.device), last]

    def _prefill_whole(self, reqs: list[GenerationRequest], slots: list[int]) -> torch.Tensor:
        """No sharing: every prompt (image included) prefilled on its own row from position 0."""
        out = []
        for i, req in enumerate(reqs):
            vision = self._vision([req]) if req.pixel_values is not None else {}
            embeds, positions = self._embed_rows([req.prompt_ids], [vision[req.image_digest]] if vision else None)
            self.attn.plan_prefill([slots[i]], [0])
            hidden = self.model.forward_embeds(embeds, positions, self.attn)
            out.append(hidden[:, -1])
        return torch.cat(out)

    # ---- decode -------------------------------------------------------------------------------
    def _decode(self) -> None:
        seqs = self.running
        self.metrics.batch_size.observe(len(seqs))
        with self.clock.phase("decode"):
            logits = self.decoder.run([s.tokens[-1] for s in seqs], [s.next_position for s in seqs],
                                      [s.cache_len for s in seqs])
            # The outputs so far go to their event loops now, while the GPU runs this step: a loop's thread takes
            # them under the GIL while this thread waits for the step's tokens anyway, instead of between the end
            # of a step and the launch of the next, where every millisecond leaves the GPU idle.
            self._flush()
        for s in seqs:
            s.cache_len += 1
            s.next_position += 1
        with self.clock.phase("sample_emit"):
            self._sample_and_emit(seqs, logits)

    def _sample_and_emit(self, seqs: list[Sequence], logits: torch.Tensor, first_slot: int = 0) -> None:
        """`seqs` are running[first_slot:first_slot + len(seqs)]; finished ones leave their slots."""
        if any(s.choice is not None or not s.greedy for s in seqs):
            logits = logits.float()
        # else argmax on the model's dtype: the same tokens (float32 holds every bf16/fp16 value, in order), without
        # a float32 copy of [rows, vocab] logits every step (39 MB at 64 rows)
        for i, s in enumerate(seqs):
            if s.choice is not None:
                allowed = torch.tensor(s.choice.allowed(), device=logits.device)
                row = torch.full_like(logits[i], float("-inf"))
                row[allowed] = logits[i, allowed]
                logits[i] = row
        tokens = logits.argmax(dim=-1)
        sampled = [i for i, s in enumerate(seqs) if not s.greedy]
        if sampled:
            from ..sampling import sample
            for i in sampled:
                s = seqs[i]
                tokens[i] = sample(logits[i:i + 1], s.req.temperature, s.req.top_p, s.generator)[0]
        done, outs = [], []
        now = time.perf_counter()
        for i, (s, tok) in enumerate(zip(seqs, tokens.tolist())):
            first = not s.tokens
            out = s.accept(tok)
            if first:
                self.metrics.ttft.observe(now - s.req.arrival)
            if s.finish_reason is None and s.cache_len >= self.slot_len:
                s.finish_reason = "length"
                out = s.output(out.text + s.text.finish(), out.token_ids)
            outs.append(out)
            if s.finish_reason is not None:
                done.append(first_slot + i)
        for s, out in zip(seqs, outs):
            self._emit(s.req, out)
        self.metrics.generation_tokens.inc(len(seqs))
        if done:
            self._release(done)

    def _release(self, indices: list[int]) -> None:
        """Finished sequences leave; the last running sequence moves into each freed slot."""
        for i in sorted(indices, reverse=True):
            last = len(self.running) - 1
            if i != last:
                moved = self.running[last]
                self.cache.move(last, i, moved.cache_len)
                self.running[i] = moved
            self.running.pop()
            self.metrics.requests_finished.inc()
