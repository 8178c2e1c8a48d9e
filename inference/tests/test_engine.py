"""The continuous-batching engine on the tiny model, in-process: same greedy tokens as the model's
own KV-cache loop, whatever the batching, slot moves and prefix sharing."""
import threading

import pytest
import torch
from PIL import Image

from vlmserve.chat import build_prompt
from vlmserve.engine import Engine, EngineConfig, GenerationRequest, Overloaded
from vlmserve.engine.detok import TextAssembler
from vlmserve.image import preprocess
from vlmserve.tokenizer import Tokenizer
from vlmserve.weights import load_model

PROMPTS = ["Describe this image.", "What text is in it?", "Is it a photo, a chart or a document?"]


@pytest.fixture(scope="module")
def model_tok(tiny_dir):
    model, _ = load_model(tiny_dir, "cpu", "float32")
    return model, Tokenizer.from_dir(tiny_dir)


@pytest.fixture(scope="module")
def pixels(model_tok):
    img = Image.linear_gradient("L").resize((90, 70)).convert("RGB")
    return preprocess(img, model_tok[0].config.vision.image_size)


def reference(model, ids, px, n):
    """Greedy tokens from the model core's own prefill + DynamicKVCache loop."""
    out = []
    with torch.inference_mode():
        hidden, _, cache = model.prefill(torch.tensor([ids]), None if px is None else px[None])
        nxt = model.logits(hidden[:, -1]).argmax(-1)
        pos = len(ids)
        for _ in range(n):
            out.append(int(nxt))
            emb, p = model.embed(nxt[:, None], None, torch.tensor([[pos]]))
            nxt = model.logits(model.forward_embeds(emb, p, cache)[:, -1]).argmax(-1)
            pos += 1
    return out


def run(engine, reqs):
    """Submits all requests at once; returns {id: [outputs]}."""
    results, done = {r.request_id: [] for r in reqs}, threading.Semaphore(0)

    def sink(out):
        results[out.request_id].append(out)
        if out.finished:
            done.release()
    for r in reqs:
        r.sink = sink
        engine.submit(r)
    for _ in reqs:
        assert done.acquire(timeout=60)
    return results


def tokens(outs):
    return [t for o in outs for t in o.token_ids]


def requests(tok, px, n_tokens, digest="img-1"):
    reqs = []
    for i, p in enumerate(PROMPTS):
        ids = build_prompt(tok, [{"role": "user", "content": p}], True)
        reqs.append(GenerationRequest(f"img{i}", ids, px, digest, n_tokens, ignore_eos=True))
    for i, p in enumerate(["hello", "count to ten"]):
        ids = build_prompt(tok, [{"role": "user", "content": p}], False)
        reqs.append(GenerationRequest(f"txt{i}", ids, None, None, n_tokens, ignore_eos=True))
    return reqs


@pytest.mark.parametrize("prefix_cache", [True, False])
def test_batched_engine_matches_reference_greedy(model_tok, pixels, prefix_cache):
    model, tok = model_tok
    n = 10
    # 2 slots for 5 requests: sequences finish, free slots get refilled, the last slot moves down.
    engine = Engine(model, tok, EngineConfig(max_batch=2, slot_len=256, prefix_cache=prefix_cache)).start()
    try:
        reqs = requests(tok, pixels, n)
        got = run(engine, reqs)
    finally:
        engine.stop()
    for r in reqs:
        want = reference(model, r.prompt_ids, r.pixel_values, n)
        assert tokens(got[r.request_id]) == want, r.request_id
        last = got[r.request_id][-1]
        assert last.finish_reason == "length" and last.completion_tokens == n
        extra = model.config.n_vision_embeds - 3 if r.pixel_values is not None else 0
        assert last.prompt_tokens == len(r.prompt_ids) + extra
    m = engine.metrics
    if prefix_cache:   # one image, three prompts: one vision pass, one prefix prefill, two reuses
        assert m.images_encoded.value == 1
        assert m.prefix_cache_misses.value == 1 and m.prefix_cache_hits.value == 2
    else:
        assert m.images_encoded.value == 3 and m.prefix_cache_hits.value == 0


def test_embedding_table_in_host_memory_gives_the_same_tokens(tiny_dir, pixels):
    """The lookup path of a table kept on the host (Embedding.keep_on_host: rows gathered there, only they
    copied to the device) feeds prefill and decode the same rows. On CPU the "device" is the CPU too, so the
    host path is forced by hand; the GPU machine runs it for real (bench/nf4_memory_speed.py, --quant nf4)."""
    model, _ = load_model(tiny_dir, "cpu", "float32")
    tok = Tokenizer.from_dir(tiny_dir)
    table = model.transformer.embedding
    table.rows_to = torch.device("cpu")
    assert table.on_host
    host_lookups = []
    rows = table.rows
    table.rows = lambda ids: host_lookups.append(ids.shape) or rows(ids)

    def device_path(*_):
        raise AssertionError("the device-table lookup ran")

    table.word_embeddings.forward = device_path
    engine = Engine(model, tok, EngineConfig(max_batch=2, slot_len=256)).start()
    try:
        reqs = requests(tok, pixels, 6)
        got = run(engine, reqs)
    finally:
        engine.stop()
    assert len(host_lookups) > len(reqs)  # prefills and decode steps
    del table.rows, table.word_embeddings.forward
    for r in reqs:
        assert tokens(got[r.request_id]) == reference(model, r.prompt_ids, r.pixel_values, 6), r.request_id


def test_prefix_kept_for_later_requests(model_tok, pixels):
    model, tok = model_tok
    engine = Engine(model, tok, EngineConfig(max_batch=4, slot_len=256)).start()
    try:
        first = run(engine, requests(tok, pixels, 4)[:1])
        later = run(engine, requests(tok, pixels, 4)[1:3])
    finally:
        engine.stop()
    assert engine.metrics.images_encoded.value == 1 and engine.metrics.prefix_cache_hits.value == 2
    for r in requests(tok, pixels, 4)[1:3]:
        assert tokens(later[r.request_id]) == reference(model, r.prompt_ids, pixels, 4)
    assert first


def test_request_finishing_at_its_first_token_leaves_running_ones_alone(model_tok):
    """A request that ends at its first token (a one-token label, max_tokens=1) while others run must
    free its own slot: freeing another one lost that request's answer (seen as a hung HTTP request)."""
    model, tok = model_tok
    n = 12
    engine = Engine(model, tok, EngineConfig(max_batch=4, slot_len=256)).start()
    first_token, results, finished = threading.Event(), {"long": [], "short": []}, threading.Semaphore(0)

    def sink(out):
        results[out.request_id].append(out)
        first_token.set()
        if out.finished:
            finished.release()
    try:
        ids = build_prompt(tok, [{"role": "user", "content": "count to ten"}], False)
        long = GenerationRequest("long", ids, None, None, n, ignore_eos=True)
        long.sink = sink
        engine.submit(long)
        assert first_token.wait(60)          # "long" is running now
        short = GenerationRequest("short", build_prompt(tok, [{"role": "user", "content": "hi"}], False),
                                  None, None, 1, ignore_eos=True)
        short.sink = sink
        engine.submit(short)
        assert finished.acquire(timeout=60) and finished.acquire(timeout=60), "a request got no final output"
    finally:
        engine.stop()
    assert tokens(results["long"]) == reference(model, long.prompt_ids, None, n)
    assert len(tokens(results["short"])) == 1 and results["short"][-1].finish_reason == "length"
    assert engine.metrics.requests_finished.value == 2


def test_admission_refused_when_slots_and_queue_are_full(model_tok):
    model, tok = model_tok
    engine = Engine(model, tok, EngineConfig(max_batch=1, max_waiting=0, slot_len=256))  # not started
    ids = build_prompt(tok, [{"role": "user", "content": "hi"}], False)
    engine.submit(GenerationRequest("a", ids, None, None, 5))
    with pytest.raises(Overloaded, match="KV cache slots"):
        engine.submit(GenerationRequest("b", ids, None, None, 5))
    assert engine.metrics.requests_rejected.value == 1


def test_stop_strings_are_cut_and_never_streamed_in_part(model_tok):
    tok = model_tok[1]
    ids = tok.encode("hello world, stop here please")
    asm = TextAssembler(tok, ["stop here"])
    streamed = "".join(asm.add(t) for t in ids if not asm.stopped)
    assert asm.stopped and streamed == "hello world, " == asm.text


def test_multibyte_characters_are_not_split(model_tok):
    tok = model_tok[1]
    text = "naïve café 日本"
    asm = TextAssembler(tok, [])
    pieces = [asm.add(t) for t in tok.encode(text)] + [asm.finish()]
    assert "".join(pieces) == text and all("\ufffd" not in p for p in pieces)


def test_prefix_store_eviction_within_one_batch(model_tok, pixels):
    """A stored prefix is reused in the same round in which a new prefix evicts it (store of 1 entry)."""
    model, tok = model_tok
    other = preprocess(Image.new("RGB", (40, 40), (9, 99, 199)), model.config.vision.image_size)
    engine = Engine(model, tok, EngineConfig(max_batch=4, slot_len=256, prefix_cache_entries=1)).start()
    try:
        run(engine, requests(tok, pixels, 3, digest="A")[:1])
        a, b = requests(tok, pixels, 5, digest="A")[1], requests(tok, other, 5, digest="B")[0]
        got = run(engine, [a, b])
    finally:
        engine.stop()
    assert engine.metrics.prefix_cache_hits.value == 1 and engine.metrics.images_encoded.value == 2
    for r in (a, b):
        assert tokens(got[r.request_id]) == reference(model, r.prompt_ids, r.pixel_values, 5)
