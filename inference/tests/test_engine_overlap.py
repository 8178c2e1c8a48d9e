"""A prefill round beside decode steps (engine/overlap.py), on the tiny model on CPU: the round is prefilled into
staging slots while the running sequences decode, then its prompts move to their own slots. On CPU the round has
run when it is queued, so these tests tell the engine the GPU is still busy for a few polls: the running sequences
take that many decode steps in the meantime, finish, and leave their slots, as they would beside a real GPU round."""
import threading
from contextlib import contextmanager

import pytest
import torch

from vlmserve.engine import Engine, EngineConfig
from vlmserve.tokenizer import Tokenizer
from vlmserve.weights import load_model

from test_engine import reference, tokens
from test_engine_scheduling import Log, image, image_request, text_request


@pytest.fixture(scope="module")
def model_tok(tiny_dir):
    model, _ = load_model(tiny_dir, "cpu", "float32")
    return model, Tokenizer.from_dir(tiny_dir)


def busy_for(engine, polls: int) -> None:
    """Each prefill round reads as unfinished for `polls` polls after it is queued."""
    overlap = engine.overlap
    queue_prefill, left = overlap.prefill, [0]

    @contextmanager
    def prefill():
        with queue_prefill():
            yield
        left[0] = polls

    def done():
        left[0] -= 1
        return left[0] < 0

    overlap.prefill, overlap.done = prefill, done


def start(model, tok, polls, **cfg):
    engine = Engine(model, tok, EngineConfig(slot_len=256, **cfg))
    busy_for(engine, polls)
    return engine.start()


def submit_after_first_token(engine, log, first, later):
    """`first` is running (it has its first token) before `later` are submitted."""
    for r in first:
        r.sink = log.sink
        engine.submit(r)
    while len({rid for rid, n in log.events if n}) < len(first):
        threading.Event().wait(0.01)
    for r in later:
        r.sink = log.sink
        engine.submit(r)


def test_staging_slots_come_on_top_of_the_request_slots(model_tok):
    model, tok = model_tok
    engine = Engine(model, tok, EngineConfig(max_batch=3, slot_len=256, overlap_slots=2))
    assert engine.n_slots == 3 and engine.staging == 2 and engine.cache.n_slots == 5
    engine = Engine(model, tok, EngineConfig(max_batch=3, slot_len=256, overlap_slots=2, kv_budget_tokens=4 * 256))
    assert engine.n_slots == 3 and engine.staging == 1     # a budget serves requests first
    engine = Engine(model, tok, EngineConfig(max_batch=3, slot_len=256, overlap_slots=2, kv_budget_tokens=3 * 256))
    assert engine.n_slots == 3 and engine.staging == 0


def test_running_sequences_decode_while_a_round_is_prefilled(model_tok):
    model, tok = model_tok
    engine = start(model, tok, 3, max_batch=4, round_images=1, overlap_slots=2)
    running = text_request(tok, "running", "count to ten", 30)
    imgs = [image_request(tok, f"img{i}", image(model, (40 * i, 90, 200)), f"digest{i}", 3) for i in range(3)]
    log = Log(4)
    try:
        submit_after_first_token(engine, log, [running], imgs)
        log.wait()
    finally:
        engine.stop()
    order = [rid for rid, n in log.events if n]
    firsts = [order.index(f"img{i}") for i in range(3)]
    # each round: three decode steps beside its prefill, then the round's own step
    for a, b in zip(firsts, firsts[1:]):
        assert order[a:b].count("running") >= 4, order
    for r in [running] + imgs:
        assert tokens(log.results[r.request_id]) == reference(model, r.prompt_ids, r.pixel_values,
                                                              r.max_tokens), r.request_id


def test_sequences_finishing_beside_a_round_leave_their_slots(model_tok):
    """Two running sequences, one ending during the round (the other moves into its slot), then both: the new
    prompts join after whoever is left, their KV moved out of the staging slots."""
    model, tok = model_tok
    engine = start(model, tok, 6, max_batch=4, round_images=2, overlap_slots=2)
    first = [text_request(tok, "short", "hello", 3), text_request(tok, "long", "count to ten", 12)]
    later = [image_request(tok, f"img{i}", image(model, (200, 60 * i, 10)), f"d{i}", 5) for i in range(2)]
    later.append(text_request(tok, "txt", "hello there", 4))
    log = Log(len(first) + len(later))
    try:
        submit_after_first_token(engine, log, first, later)
        log.wait()
    finally:
        engine.stop()
    for r in first + later:
        assert tokens(log.results[r.request_id]) == reference(model, r.prompt_ids, r.pixel_values,
                                                              r.max_tokens), r.request_id
        assert log.results[r.request_id][-1].finish_reason == "length"
    assert engine.running == []


def test_same_tokens_with_and_without_the_overlap(model_tok):
    model, tok = model_tok
    got = {}
    for slots in (0, 3):
        engine = start(model, tok, 2, max_batch=3, round_images=1, overlap_slots=slots)
        first = [text_request(tok, "a", "count to ten", 9)]
        later = [image_request(tok, f"img{i}", image(model, (20, 90, 60 * i)), f"s{i % 2}", 4) for i in range(3)]
        log = Log(4)
        try:
            submit_after_first_token(engine, log, first, later)
            log.wait()
        finally:
            engine.stop()
        got[slots] = {rid: tokens(outs) for rid, outs in log.results.items()}
    assert got[0] == got[3]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="two CUDA streams")
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_on_the_gpu_a_round_beside_decode_steps_gives_the_same_tokens(tiny_dir, dtype):
    """Real streams: the round on the prefill stream, decode steps replayed from CUDA graphs on the decode stream
    (told the round is still running for a few polls, so that they do run beside it), the prompts moved out of the
    staging slots after both. Against the same requests with prefill and decode taking turns."""
    model, _ = load_model(tiny_dir, "cuda", dtype)
    tok = Tokenizer.from_dir(tiny_dir)
    got = {}
    for slots in (0, 3):
        engine = start(model, tok, 4, max_batch=3, round_images=1, overlap_slots=slots)
        first = [text_request(tok, "a", "count to ten", 12)]
        later = [image_request(tok, f"img{i}", image(model, (20, 90, 60 * i)), f"s{i % 2}", 4) for i in range(3)]
        log = Log(4)
        try:
            submit_after_first_token(engine, log, first, later)
            log.wait()
        finally:
            engine.stop()
        got[slots] = {rid: tokens(outs) for rid, outs in log.results.items()}
    assert got[0] == got[3]
