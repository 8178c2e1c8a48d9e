"""The engine's outputs crossing to the asyncio side (what the HTTP server streams): every output of every request
arrives, in order, the last one finished, with one hand-over to the event loop per scheduler round at most; a
closed loop fails only its own requests."""
import asyncio

import pytest

from vlmserve.engine import Engine, EngineConfig, submit
from vlmserve.engine import stream
from vlmserve.tokenizer import Tokenizer
from vlmserve.weights import load_model

from test_engine import reference
from test_engine_scheduling import text_request


@pytest.fixture(scope="module")
def model_tok(tiny_dir):
    model, _ = load_model(tiny_dir, "cpu", "float32")
    return model, Tokenizer.from_dir(tiny_dir)


def test_every_output_arrives_in_order_and_the_loop_is_woken_once_per_round_at_most(model_tok, monkeypatch):
    model, tok = model_tok
    engine = Engine(model, tok, EngineConfig(max_batch=6, slot_len=256))
    rounds, wakes = [0], [0]
    run_round = engine.run_round

    def counted_round(block=False):
        rounds[0] += 1
        run_round(block)
    engine.run_round = counted_round                # the engine thread's own loop calls it through the instance
    deliver = stream._Mailbox._deliver

    def counted_deliver(self):
        wakes[0] += 1
        deliver(self)
    monkeypatch.setattr(stream._Mailbox, "_deliver", counted_deliver)
    reqs = [text_request(tok, f"r{i}", f"count to {i + 3}", 12) for i in range(6)]

    async def main():
        async def collect(req):
            return [out async for out in submit(engine, req)]
        return await asyncio.gather(*(collect(r) for r in reqs))

    engine.start()
    try:
        results = asyncio.run(main())
    finally:
        engine.stop()
    for req, outs in zip(reqs, results):
        assert [o.finished for o in outs] == [False] * (len(outs) - 1) + [True]
        assert outs[-1].finish_reason == "length" and outs[-1].completion_tokens == 12
        assert [t for o in outs for t in o.token_ids] == reference(model, req.prompt_ids, None, 12)
    assert 1 <= wakes[0] <= rounds[0]
    assert wakes[0] < sum(len(outs) for outs in results)  # not once per output


def test_a_closed_loop_drops_its_outputs_and_says_so():
    loop = asyncio.new_event_loop()
    box = stream._Mailbox(loop)
    loop.close()
    box.post(asyncio.Queue(), object())
    with pytest.raises(RuntimeError):
        box.flush()
    box.flush()                                   # nothing left to hand over: no error, nothing kept


def test_a_request_whose_loop_is_gone_does_not_stop_the_others(model_tok):
    """A client side that breaks while the engine serves it (its loop closed): the engine logs it and goes on."""
    model, tok = model_tok
    engine = Engine(model, tok, EngineConfig(max_batch=2, slot_len=256)).start()
    try:
        orphan = text_request(tok, "orphan", "hello", 200)
        gone = asyncio.new_event_loop()
        box = stream._Mailbox(gone)
        gone.close()
        orphan.sink = lambda out: box.post(None, out)
        orphan.flush = box.flush
        engine.submit(orphan)

        async def main():
            return [out async for out in submit(engine, text_request(tok, "alive", "count to ten", 8))]
        outs = asyncio.run(main())
        assert outs[-1].finished and outs[-1].completion_tokens == 8
    finally:
        engine.abort("orphan")
        engine.stop()
