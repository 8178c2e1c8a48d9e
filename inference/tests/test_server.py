"""The HTTP server as users run it: `python -m vlmserve serve` in a subprocess on a free port, a real
HTTP client, the tiny random checkpoint."""
import base64
import concurrent.futures
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

INFERENCE = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir, *extra):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(INFERENCE) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "vlmserve", "serve", "--model", str(model_dir), "--port", str(port),
                             "--dtype", "float32", "--device", "cpu", "--log-level", "warning", *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited:\n" + proc.stdout.read())
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not come up:\n" + proc.stdout.read())


def stop_server(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def server(tiny_dir):
    proc, url = start_server(tiny_dir, "--max-batch", "4", "--allow-local-files", "--max-image-bytes", "200000")
    yield url
    stop_server(proc)


def png_url(color=(200, 30, 30), size=(64, 48)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def chat(text, image=None, **kw):
    content = [{"type": "text", "text": text}]
    if image:
        content.insert(0, {"type": "image_url", "image_url": {"url": image}})
    return {"model": "glm-4v-9b", "messages": [{"role": "user", "content": content}], "temperature": 0,
            "max_tokens": 12, **kw}


def post(url, body, **kw):
    return httpx.post(url + "/v1/chat/completions", json=body, timeout=60, **kw)


def answer(resp):
    assert resp.status_code == 200, resp.text
    return resp.json()["choices"][0]["message"]["content"]


RED, BLUE = png_url((200, 30, 30)), png_url((20, 40, 220))
BODIES = [chat("Describe this image.", RED), chat("What is written here?", RED), chat("Describe this image.", BLUE),
          chat("Classify it.", BLUE, max_tokens=5), chat("Hello there"), chat("Tell me a story", max_tokens=20),
          chat("Is it a photo?", RED, max_tokens=3), chat("Count", max_tokens=7)]


def test_concurrent_requests_answer_like_sequential_ones(server):
    sequential = [answer(post(server, b)) for b in BODIES]
    with concurrent.futures.ThreadPoolExecutor(len(BODIES)) as pool:
        concurrent_ = list(pool.map(lambda b: answer(post(server, b)), BODIES))
    assert concurrent_ == sequential
    assert len(set(sequential)) > 1   # the prompts really lead to different answers


def test_response_shape_and_usage(server, tiny_dir):
    from vlmserve.chat import build_prompt
    from vlmserve.config import ModelConfig
    from vlmserve.tokenizer import Tokenizer

    body = chat("Describe this image.", RED, max_tokens=9, ignore_eos=True)
    data = post(server, body).json()
    assert data["object"] == "chat.completion" and data["model"] == "glm-4v-9b"
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["choices"][0]["message"]["role"] == "assistant"
    tok, cfg = Tokenizer.from_dir(tiny_dir), ModelConfig.from_dir(tiny_dir)
    ids = build_prompt(tok, [{"role": "user", "content": "Describe this image."}], True)
    assert data["usage"] == {"prompt_tokens": len(ids) + cfg.n_vision_embeds - 3, "completion_tokens": 9,
                             "total_tokens": len(ids) + cfg.n_vision_embeds - 3 + 9}


def test_streaming_assembles_to_the_non_streaming_answer(server):
    body = chat("Describe this image.", RED, max_tokens=15)
    whole = post(server, body).json()
    text, finish, usage, done = [], None, None, False
    with httpx.stream("POST", server + "/v1/chat/completions", timeout=60,
                      json={**body, "stream": True, "stream_options": {"include_usage": True}}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if not line:
                continue
            assert line.startswith("data: ")
            if line == "data: [DONE]":
                done = True
                continue
            chunk = json.loads(line[6:])
            assert chunk["object"] == "chat.completion.chunk"
            if chunk.get("usage"):
                usage = chunk["usage"]
            for c in chunk["choices"]:
                text.append(c["delta"].get("content") or "")
                finish = c["finish_reason"] or finish
    assert done and "".join(text) == whole["choices"][0]["message"]["content"]
    assert finish == whole["choices"][0]["finish_reason"] and usage == whole["usage"]


@pytest.mark.parametrize("field", ["structured_outputs", "guided_choice"])
@pytest.mark.parametrize("labels", [["photo", "document", "chart", "screenshot"], ["cat", "cattle", "dog"],
                                    ["a", "ab", "abc"], ["yes", "no"]])
def test_constrained_choice_returns_a_label(server, field, labels):
    extra = {"structured_outputs": {"choice": labels}} if field == "structured_outputs" else {"guided_choice": labels}
    for i, sampling in enumerate([{"temperature": 0}, {"temperature": 1.5, "seed": 7}, {"temperature": 1.0, "seed": 3}]):
        body = chat("Which kind of image is this?", RED if i % 2 else BLUE, max_tokens=2, **sampling, **extra)
        got = answer(post(server, body))
        assert got in labels


def test_same_seed_same_sample(server):
    body = chat("Say something.", RED, temperature=1.0, top_p=0.9, seed=1234, max_tokens=12)
    assert answer(post(server, body)) == answer(post(server, body))


def test_stop_string_ends_the_answer(server):
    full = answer(post(server, chat("Tell me a story", max_tokens=20)))
    assert len(full) > 4
    stop = full[2:4]
    cut = post(server, chat("Tell me a story", max_tokens=20, stop=[stop])).json()
    assert cut["choices"][0]["message"]["content"] == full[:full.index(stop)]
    assert cut["choices"][0]["finish_reason"] == "stop"


def test_local_file_image_when_enabled(server, tmp_path):
    f = tmp_path / "red.png"
    f.write_bytes(base64.b64decode(RED.split(",", 1)[1]))
    body = chat("Describe this image.", str(f))
    assert answer(post(server, body)) == answer(post(server, chat("Describe this image.", RED)))
    assert answer(post(server, chat("Describe this image.", f.as_uri()))) == answer(post(server, body))


BAD = {
    "malformed JSON": (b"{not json", 400, "invalid_json"),
    "unknown model": ({**chat("hi"), "model": "gpt-7"}, 404, "model_not_found"),
    "n != 1": ({**chat("hi"), "n": 2}, 400, None),
    "two images": ({"model": "glm-4v-9b", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": RED}}, {"type": "image_url", "image_url": {"url": BLUE}},
        {"type": "text", "text": "compare"}]}]}, 400, "too_many_images"),
    "unreadable image": (chat("hi", "data:image/png;base64," + base64.b64encode(b"not an image").decode()),
                         400, "invalid_image"),
    "bad base64": (chat("hi", "data:image/png;base64,@@@@"), 400, "invalid_image"),
    "oversized image": (chat("hi", "data:image/png;base64," + base64.b64encode(b"x" * 300_000).decode()),
                        400, "image_too_large"),
    "http image disabled": (chat("hi", "http://127.0.0.1:9/cat.png"), 400, "image_source_disabled"),
    "prompt over context": (chat("word " * 20_000), 400, "context_length_exceeded"),
    "max_tokens over context": (chat("hi", max_tokens=10**6), 400, "context_length_exceeded"),
    "no messages": ({"model": "glm-4v-9b", "messages": []}, 400, None),
    "bad temperature": ({**chat("hi"), "temperature": "hot"}, 400, None),
    "empty choice list": ({**chat("hi"), "guided_choice": []}, 400, None),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_gives_openai_error_and_server_survives(server, case):
    body, status, code = BAD[case]
    if isinstance(body, bytes):
        r = httpx.post(server + "/v1/chat/completions", content=body, timeout=60,
                       headers={"content-type": "application/json"})
    else:
        r = post(server, body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    if code:
        assert err["code"] == code
    assert answer(post(server, chat("still there?", max_tokens=3))) is not None


def test_models_health_and_unknown_route(server):
    models = httpx.get(server + "/v1/models").json()
    assert models["object"] == "list" and "glm-4v-9b" in [m["id"] for m in models["data"]]
    assert httpx.get(server + "/health").json()["status"] == "ok"
    r = httpx.get(server + "/v1/nothing")
    assert r.status_code == 404 and "error" in r.json()


def parse_metrics(text):
    values = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        name, value = line.rsplit(" ", 1)
        values[name] = float(value)
    return values


def test_metrics_count_requests_tokens_and_cache_hits(server):
    before = parse_metrics(httpx.get(server + "/metrics").text)
    img = png_url((1, 2, 3))
    for q in ["one", "two", "three"]:
        post(server, chat(q, img, max_tokens=4, ignore_eos=True))
    r = httpx.get(server + "/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    after = parse_metrics(r.text)
    delta = {k: after[k] - before.get(k, 0) for k in after}
    assert delta["vlmserve_generation_tokens_total"] == 12
    assert delta["vlmserve_images_encoded_total"] == 1
    assert delta["vlmserve_prefix_cache_hits_total"] == 2
    assert delta["vlmserve_requests_finished_total"] == 3
    assert delta["vlmserve_decode_batch_size_count"] >= 9
    for name in ["vlmserve_queue_depth", "vlmserve_running_sequences", "vlmserve_gpu_memory_allocated_bytes",
                 "vlmserve_prompt_tokens_total", 'vlmserve_decode_batch_size_bucket{le="+Inf"}']:
        assert name in after


def test_overload_gives_429_and_disconnect_frees_the_slot(tiny_dir):
    proc, url = start_server(tiny_dir, "--max-batch", "1", "--max-waiting", "0")
    try:
        long = {**chat("Tell me a long story", max_tokens=5000, ignore_eos=True), "stream": True}
        # The tiny model's 512-token context lets the long answer end within a second or two, so on a
        # loaded machine it can finish before the second request arrives: try a few times, and require
        # the refusal whenever the long answer was still running.
        refused = None
        for _ in range(5):
            with httpx.stream("POST", url + "/v1/chat/completions", json=long, timeout=60) as r:
                # the first chunk comes once the request is queued or running: either way it holds the only slot
                lines = r.iter_lines()   # keep the iterator: dropping it closes the connection
                assert next(lines).startswith("data: ")
                second = post(url, chat("me too", max_tokens=3))
                rest = list(lines)
            if second.status_code == 429:
                refused = second
                break
            assert second.status_code == 200 and rest[-1] == "data: [DONE]", second.text
        assert refused is not None, "the long answer always ended before the second request came"
        err = refused.json()["error"]
        assert err["type"] == "rate_limit_exceeded" and "KV cache" in err["message"]
        with httpx.stream("POST", url + "/v1/chat/completions", json=long, timeout=60) as r:
            lines = r.iter_lines()
            assert next(lines).startswith("data: ")
        # the stream was closed mid-answer: the engine aborts it and the slot is free again
        deadline = time.time() + 30
        while (r := post(url, chat("now?", max_tokens=3))).status_code == 429 and time.time() < deadline:
            time.sleep(0.2)
        assert answer(r) is not None
    finally:
        stop_server(proc)
