"""Scheduling on the tiny model: priority order, prefill work bounded per round with decode steps in
between, and the same greedy tokens however the prefill is cut into rounds."""
import threading

import pytest
from PIL import Image

from vlmserve.chat import build_prompt
from vlmserve.engine import Engine, EngineConfig, GenerationRequest
from vlmserve.engine.waiting import WaitingLine
from vlmserve.image import preprocess
from vlmserve.tokenizer import Tokenizer
from vlmserve.weights import load_model

from test_engine import reference, run, tokens


@pytest.fixture(scope="module")
def model_tok(tiny_dir):
    model, _ = load_model(tiny_dir, "cpu", "float32")
    return model, Tokenizer.from_dir(tiny_dir)


def image(model, colour):
    return preprocess(Image.new("RGB", (48, 40), colour), model.config.vision.image_size)


def text_request(tok, rid, text, n, priority=0):
    ids = build_prompt(tok, [{"role": "user", "content": text}], False)
    return GenerationRequest(rid, ids, None, None, n, ignore_eos=True, priority=priority)


def image_request(tok, rid, px, digest, n, priority=0):
    ids = build_prompt(tok, [{"role": "user", "content": "Describe this image."}], True)
    return GenerationRequest(rid, ids, px, digest, n, ignore_eos=True, priority=priority)


class Log:
    """Every output in the order the engine emitted it."""

    def __init__(self, n_requests):
        self.events, self.results = [], {}
        self._done, self._n = threading.Semaphore(0), n_requests

    def sink(self, out):
        self.events.append((out.request_id, len(out.token_ids)))
        self.results.setdefault(out.request_id, []).append(out)
        if out.finished:
            self._done.release()

    def wait(self):
        for _ in range(self._n):
            assert self._done.acquire(timeout=120), "a request got no final output"

    def first_tokens(self):
        order = []
        for rid, n in self.events:
            if n and rid not in order:
                order.append(rid)
        return order


def test_waiting_line_orders_by_priority_then_arrival():
    line = WaitingLine()
    reqs = [GenerationRequest(name, [1], None, None, 1, priority=p)
            for name, p in [("a", 0), ("b", 5), ("c", -3), ("d", 0), ("e", -3)]]
    for r in reqs:
        line.push(r)
    assert [r.request_id for r in line] == ["c", "e", "a", "d", "b"]
    assert [r.request_id for r in line.remove({"e", "b", "nope"})] in (["e", "b"], ["b", "e"])
    assert [line.pop().request_id for _ in range(len(line))] == ["c", "a", "d"]
    assert not line


def test_interactive_request_overtakes_queued_batch_work(model_tok):
    model, tok = model_tok
    engine = Engine(model, tok, EngineConfig(max_batch=1, slot_len=256))   # one slot: strict order
    reqs = [text_request(tok, "batch1", "hello", 3), text_request(tok, "batch2", "hello", 3),
            text_request(tok, "later", "hello", 3, priority=10),
            text_request(tok, "interactive", "hello", 3, priority=-5)]
    log = Log(len(reqs))
    for r in reqs:            # all queued before the engine runs: the order is the scheduler's alone
        r.sink = log.sink
        engine.submit(r)
    engine.start()
    try:
        log.wait()
    finally:
        engine.stop()
    assert log.first_tokens() == ["interactive", "batch1", "batch2", "later"]
    want = reference(model, reqs[0].prompt_ids, None, 3)
    assert all(tokens(log.results[r.request_id]) == want for r in reqs)


def test_running_sequences_decode_between_bounded_prefill_rounds(model_tok):
    model, tok = model_tok
    cfg = EngineConfig(max_batch=4, slot_len=256, round_images=1)
    engine = Engine(model, tok, cfg).start()
    log = Log(4)
    try:
        first = text_request(tok, "running", "count to ten", 20)
        first.sink = log.sink
        engine.submit(first)
        while not log.events:             # "running" has its first token: it holds a slot now
            threading.Event().wait(0.01)
        imgs = [image_request(tok, f"img{i}", image(model, (40 * i, 90, 200)), f"digest{i}", 3) for i in range(3)]
        for r in imgs:
            r.sink = log.sink
            engine.submit(r)
        log.wait()
    finally:
        engine.stop()
    order = [rid for rid, n in log.events if n]
    firsts = [order.index(f"img{i}") for i in range(3)]
    assert firsts == sorted(firsts)
    # one image per round, and a decode step of the running sequence after each round
    for a, b in zip(firsts, firsts[1:]):
        assert "running" in order[a:b], order
    assert engine.metrics.images_encoded.value == 3
    for r in imgs:
        assert tokens(log.results[r.request_id]) == reference(model, r.prompt_ids, r.pixel_values, 3)


@pytest.mark.parametrize("round_images,round_tokens", [(1, 1), (2, 10_000), (64, 10**9)])
def test_outputs_do_not_depend_on_how_prefill_is_cut(model_tok, round_images, round_tokens):
    model, tok = model_tok
    engine = Engine(model, tok, EngineConfig(max_batch=3, slot_len=256, round_images=round_images,
                                             round_tokens=round_tokens)).start()
    reqs = [image_request(tok, f"img{i}", image(model, (200, 90 * (i % 2), 10)), f"d{i % 2}", 4) for i in range(4)]
    reqs += [text_request(tok, "txt", "count to ten", 4)]
    try:
        got = run(engine, reqs)
    finally:
        engine.stop()
    for r in reqs:
        assert tokens(got[r.request_id]) == reference(model, r.prompt_ids, r.pixel_values, 4), r.request_id
    assert engine.metrics.images_encoded.value == 2      # two distinct digests


def test_priority_must_not_break_admission_of_equal_priorities(model_tok):
    """Hostile-ish: huge and negative priorities are just ints in the order; nothing is lost."""
    model, tok = model_tok
    engine = Engine(model, tok, EngineConfig(max_batch=2, slot_len=256)).start()
    reqs = [text_request(tok, f"r{i}", "hi", 2, priority=p) for i, p in enumerate([2**62, -2**62, 0, 0, -1])]
    try:
        got = run(engine, reqs)
    finally:
        engine.stop()
    assert all(got[r.request_id][-1].finish_reason == "length" for r in reqs)
    assert [len(tokens(got[r.request_id])) for r in reqs] == [2] * 5


def test_a_new_image_prompt_is_prefilled_in_one_pass(model_tok):
    """The request that brings a new image is prefilled whole (prefix and its own text together); only a request
    reusing that image's prefix needs a pass for its own text. Counted as forward passes over prompt tokens (a
    decode step is one token per row)."""
    model, tok = model_tok
    passes = []
    forward = model.forward_embeds

    def counting(embeds, positions, attn, *args, **kw):
        if embeds.shape[1] > 1:
            passes.append(embeds.shape[:2])
        return forward(embeds, positions, attn, *args, **kw)

    model.forward_embeds = counting
    engine = Engine(model, tok, EngineConfig(max_batch=4, slot_len=256, round_images=8)).start()
    try:
        px = [image(model, (30, 60 * i, 90)) for i in range(3)]
        distinct = [image_request(tok, f"img{i}", px[i], f"new{i}", 3) for i in range(3)]
        got = run(engine, distinct)
        n_distinct = len(passes)
        again = [image_request(tok, "again", px[0], "new0", 3)]
        ids = build_prompt(tok, [{"role": "user", "content": "What text is in it?"}], True)
        again.append(GenerationRequest("other-task", ids, px[1], "new1", 3, ignore_eos=True))
        got.update(run(engine, again))
    finally:
        engine.stop()
        del model.forward_embeds
    assert n_distinct == 1 and passes[0][0] == 3, passes          # three whole prompts, one pass
    assert len(passes) == 2 and passes[1][0] == 2, passes          # the reusers' own text only
    assert passes[1][1] == max(len(model.image_tokens.split(r.prompt_ids)[1]) for r in again)
    for r in distinct + again:
        assert tokens(got[r.request_id]) == reference(model, r.prompt_ids, r.pixel_values, 3), r.request_id
