"""Hostile and unlucky clients against the real server (`python -m vlmserve serve` on the tiny model in
a subprocess): out-of-range fields, oversized or malformed bodies, stalled and vanishing clients,
foreign Host names, missing API keys. Each case names what it guards against."""
import base64
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from PIL import Image

from test_server import chat, free_port, parse_metrics, png_url, post, stop_server

MAX_BODY = 400_000


def start_logged(model_dir, log_path, *extra, env=None):
    """The server with its output in a file, so a test can read what it logged."""
    port = free_port()
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "vlmserve", "serve", "--model", str(model_dir), "--port", str(port),
                             "--dtype", "float32", "--device", "cpu", "--log-level", "info", *extra],
                            env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited:\n" + open(log_path).read())
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url, port
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not come up:\n" + open(log_path).read())


@pytest.fixture(scope="module")
def hardened(tiny_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("hardened") / "server.log"
    proc, url, port = start_logged(tiny_dir, log, "--max-batch", "2", "--max-image-pixels", "1000000",
                                   "--max-body-bytes", str(MAX_BODY), "--read-timeout", "2", "--prep-workers", "1")
    yield {"url": url, "port": port, "log": log}
    stop_server(proc)


def metrics(url):
    return parse_metrics(httpx.get(url + "/metrics").text)


def error_of(resp, status):
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    return err


def jpeg_url(size, color=(30, 160, 90)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=50)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


OUT_OF_RANGE = {
    "seed above what the sampler takes": {"seed": 2**64, "temperature": 1.0},
    "seed below what the sampler takes": {"seed": -(2**63) - 1, "temperature": 1.0},
    "max_tokens zero": {"max_tokens": 0},
    "max_tokens as text": {"max_tokens": "5"},
    "temperature too high": {"temperature": 3},
    "top_p zero": {"top_p": 0},
    "top_p above one": {"top_p": 1.5},
    "priority out of range": {"priority": 2**40},
    "priority as float": {"priority": 1.5},
    "too many stop strings": {"stop": [f"s{i}" for i in range(9)]},
    "stop string too long": {"stop": ["x" * 300]},
    "empty stop string": {"stop": [""]},
    "too many labels": {"guided_choice": [f"label{i}" for i in range(300)]},
    "label too long": {"structured_outputs": {"choice": ["short", "y" * 300]}},
    "include_usage not a boolean": {"stream": True, "stream_options": {"include_usage": "yes"}},
    "model name of a megabyte": {"model": "m" * 1_000},
}


@pytest.mark.parametrize("case", list(OUT_OF_RANGE))
def test_out_of_range_field_is_a_400_and_the_request_running_beside_it_is_unharmed(hardened, case):
    url = hardened["url"]
    long = chat("Tell me a story", max_tokens=150, ignore_eos=True)
    with httpx.Client(timeout=60) as client:
        result = {}
        runner = threading.Thread(target=lambda: result.setdefault("r", client.post(
            url + "/v1/chat/completions", json=long)))
        runner.start()
        bad = post(url, {**chat("hi", max_tokens=4), **OUT_OF_RANGE[case]})
        runner.join()
    err = error_of(bad, 400)
    assert err["type"] == "invalid_request_error"
    good = result["r"]
    assert good.status_code == 200 and good.json()["usage"]["completion_tokens"] == 150


def test_unsupported_openai_fields_are_refused_and_their_neutral_values_accepted(hardened):
    url = hardened["url"]
    for field, value in [("response_format", {"type": "json_object"}), ("tools", [{"type": "function",
                         "function": {"name": "f"}}]), ("logprobs", True), ("top_logprobs", 3), ("n", 2),
                         ("frequency_penalty", 0.5), ("logit_bias", {"5": 10})]:
        err = error_of(post(url, {**chat("hi", max_tokens=2), field: value}), 400)
        assert err["param"] == field and err["code"] == "unsupported_parameter", field
    neutral = {"response_format": {"type": "text"}, "logprobs": False, "n": 1, "tools": [], "presence_penalty": 0}
    assert post(url, {**chat("hi", max_tokens=2), **neutral}).status_code == 200


def test_body_over_the_limit_is_a_413_declared_or_chunked(hardened):
    url = hardened["url"] + "/v1/chat/completions"
    body = json.dumps(chat("z" * (MAX_BODY + 10))).encode()
    err = error_of(httpx.post(url, content=body, headers={"content-type": "application/json"}), 413)
    assert err["code"] == "request_too_large"

    def chunks():   # no Content-Length: the limit must hold while reading
        for i in range(0, len(body), 50_000):
            yield body[i:i + 50_000]
    assert error_of(httpx.post(url, content=chunks(), headers={"content-type": "application/json"}), 413)


def test_text_far_over_the_context_is_refused_before_tokenizing(hardened):
    # 16 characters per context token is the most any prompt that fits could need
    text = "a" * (16 * 8192 + 1)
    t0 = time.perf_counter()
    err = error_of(post(hardened["url"], chat(text)), 400)
    assert err["code"] == "context_length_exceeded" and "characters" in err["message"]
    assert time.perf_counter() - t0 < 30


def test_label_set_that_cannot_fit_the_context_is_a_400(hardened):
    # the prompt (8005 tokens of 8192) leaves 187: a 250-token label would be cut, so never a label
    labels = ["ok", "w" * 250]
    err = error_of(post(hardened["url"], {**chat("p" * 8000, max_tokens=1), "guided_choice": labels}), 400)
    assert err["code"] == "context_length_exceeded" and "labels" in err["message"]
    ok = post(hardened["url"], {**chat("p" * 8000, max_tokens=1), "guided_choice": ["ok", "w" * 100]})
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"] in ["ok", "w" * 100]


def test_image_far_larger_than_the_model_input_is_decoded_at_reduced_size(hardened):
    # 2000 x 2000 = 4 Mpx is over the 1 Mpx limit, but a JPEG is decoded at 1/8 scale (250 x 250)
    r = post(hardened["url"], chat("Describe this image.", jpeg_url((2000, 2000)), max_tokens=3))
    assert r.status_code == 200, r.text
    # a PNG cannot be decoded smaller: refused, and the message says why and what to do
    big_png = png_url(size=(1200, 1000))
    err = error_of(post(hardened["url"], chat("Describe this image.", big_png)), 400)
    assert err["code"] == "image_too_large" and "reduced size" in err["message"] and "1000000" in err["message"]


def test_json_content_type_is_required(hardened):
    body = json.dumps(chat("hi", max_tokens=2))
    for ctype in ["text/plain", "application/x-www-form-urlencoded", None]:
        headers = {"content-type": ctype} if ctype else {}
        r = httpx.post(hardened["url"] + "/v1/chat/completions", content=body.encode(), headers=headers)
        assert error_of(r, 415)["code"] == "unsupported_media_type"
    r = httpx.post(hardened["url"] + "/v1/chat/completions", content=body.encode(),
                   headers={"content-type": "Application/JSON; charset=utf-8"})
    assert r.status_code == 200


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"model": ' + b'{"a": ' * 40 + b"1" + b"}" * 40 + b"}",
                                 b'{"model": "glm-4v-9b", "temperature": NaN}', b"\xff\xfe{}", b"{\"a\": 1"],
                         ids=["100k nested arrays", "40 nested objects", "NaN", "not UTF-8", "truncated"])
def test_malformed_or_deeply_nested_json_is_an_openai_400(hardened, raw):
    r = httpx.post(hardened["url"] + "/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert error_of(r, 400)["code"] == "invalid_json"
    assert post(hardened["url"], chat("still there?", max_tokens=2)).status_code == 200


@pytest.mark.parametrize("field", ["model", "content", "stop", "user"])
def test_an_unpaired_surrogate_escape_is_a_400_not_a_500(hardened, field):
    # found by bench/faults/fuzz_http.py: "model": "\\ud800" was echoed into the answer, whose UTF-8 encoding failed
    body = {"model": "glm-4v-9b", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}
    if field == "content":
        body["messages"][0]["content"] = "\ud800"
    else:
        body[field] = "x\udfff" if field != "stop" else ["\ud800"]
    r = httpx.post(hardened["url"] + "/v1/chat/completions", content=json.dumps(body).encode(),
                   headers={"content-type": "application/json"})
    assert error_of(r, 400)["code"] == "invalid_json"
    assert post(hardened["url"], chat("still there?", max_tokens=2)).status_code == 200


def test_docs_are_off_by_default(hardened):
    for path in ["/docs", "/redoc", "/openapi.json"]:
        assert httpx.get(hardened["url"] + path).status_code == 404


def test_only_loopback_host_names_are_accepted_on_loopback(hardened):
    url, port = hardened["url"], hardened["port"]
    for host in [f"evil.example:{port}", "attacker.test", f"192.168.1.10:{port}", f"127.0.0.1.evil.example:{port}"]:
        err = error_of(httpx.get(url + "/v1/models", headers={"host": host}), 400)
        assert err["code"] == "invalid_host"
        assert error_of(post(url, chat("hi", max_tokens=2), headers={"host": host}), 400)
    for host in [f"localhost:{port}", f"127.0.0.1:{port}", "localhost", f"[::1]:{port}"]:
        assert httpx.get(url + "/v1/models", headers={"host": host}).status_code == 200


def raw_connection(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s


def read_all(s, timeout=10.0) -> bytes:
    s.settimeout(timeout)
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return data


def test_stalled_client_headers_and_body_time_out(hardened):
    port = hardened["port"]
    # headers never finished: the connection is closed after the read timeout (2 s here)
    s = raw_connection(port)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl")
    t0 = time.perf_counter()
    assert read_all(s, timeout=15) == b""
    assert time.perf_counter() - t0 < 10
    s.close()
    # body never finished: a 408 after the read timeout
    s = raw_connection(port)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              b"Content-Length: 1000\r\n\r\n{\"model\": ")
    reply = read_all(s, timeout=15)
    s.close()
    assert reply.startswith(b"HTTP/1.1 408") and b"request_timeout" in reply
    assert post(hardened["url"], chat("still there?", max_tokens=2)).status_code == 200


def test_client_leaving_mid_body_does_not_flood_the_log(hardened):
    before = hardened["log"].read_text()
    for _ in range(5):
        s = raw_connection(hardened["port"])
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 5000\r\n\r\n{\"model\": \"glm-4v-9b\", ")
        time.sleep(0.2)
        s.close()
    assert post(hardened["url"], chat("still there?", max_tokens=2)).status_code == 200
    new = hardened["log"].read_text()[len(before):]
    assert "Traceback" not in new and "Exception" not in new and "ERROR" not in new, new


def test_image_decoding_and_tokenizing_run_in_a_bounded_pool(hardened):
    url = hardened["url"]
    images = [jpeg_url((900, 700), (i * 40, 90, 200 - i * 30)) for i in range(6)]
    with httpx.Client(timeout=60) as client:
        threads = [threading.Thread(target=lambda im=im: client.post(
            url + "/v1/chat/completions", json=chat("Describe this image.", im, max_tokens=2))) for im in images]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    m = metrics(url)
    assert m["vlmserve_prep_running_peak"] == 1      # --prep-workers 1
    assert m["vlmserve_prep_running"] == 0 and m["vlmserve_prep_waiting"] == 0


@pytest.mark.parametrize("stream", [False, True])
def test_client_disconnect_aborts_its_request_and_frees_the_slot_within_a_second(hardened, stream):
    url, port = hardened["url"], hardened["port"]
    before = metrics(url)
    body = json.dumps({**chat("Tell me a very long story", max_tokens=6000, ignore_eos=True), "stream": stream}).encode()
    s = raw_connection(port)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    deadline = time.time() + 30
    while metrics(url)["vlmserve_running_sequences"] < 1:
        assert time.time() < deadline, "the request never started"
        time.sleep(0.05)
    s.close()
    t0 = time.perf_counter()
    while (m := metrics(url))["vlmserve_running_sequences"] > 0:
        assert time.perf_counter() - t0 < 1.0, "the slot was not freed within a second of the disconnect"
        time.sleep(0.02)
    assert m["vlmserve_requests_aborted_total"] == before["vlmserve_requests_aborted_total"] + 1
    assert m["vlmserve_generation_tokens_total"] - before["vlmserve_generation_tokens_total"] < 6000


def test_api_key_is_required_when_configured(tiny_dir, tmp_path):
    proc, url, _ = start_logged(tiny_dir, tmp_path / "key.log", env={"VLMSERVE_API_KEY": "s3cret-key"})
    try:
        assert httpx.get(url + "/health").status_code == 200          # probes carry no key
        for headers in [{}, {"authorization": "Bearer wrong"}, {"authorization": "s3cret-key"},
                        {"authorization": "Basic s3cret-key"}, {"authorization": "Bearer s3cret-key-and-more"}]:
            assert error_of(post(url, chat("hi", max_tokens=2), headers=headers), 401)["code"] == "invalid_api_key"
            assert httpx.get(url + "/v1/models", headers=headers).status_code == 401
            assert httpx.get(url + "/metrics", headers=headers).status_code == 401
        ok = {"authorization": "Bearer s3cret-key"}
        assert post(url, chat("hi", max_tokens=2), headers=ok).status_code == 200
        assert httpx.get(url + "/v1/models", headers=ok).status_code == 200
    finally:
        stop_server(proc)


def test_a_body_far_over_the_limit_still_gets_its_413_not_a_reset(hardened):
    """A client that sends its whole body before reading (as Java's HttpClient, the pipeline's, does) must read the
    refusal: answered before the body was read and then closed, the connection is reset under the client while it
    still sends, and it sees a network error (the pipeline's client then takes the endpoint out of its pool) instead
    of "larger than the limit". The server reads and drops what was sent, up to a bound."""
    body = b'{"messages": "' + b"z" * (40 * 2**20) + b'"}'
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{hardened['port']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", hardened["port"]), timeout=30) as s:
        s.sendall(head + body)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer and answer.endswith(b"}"):
                break
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"request_too_large" in answer
