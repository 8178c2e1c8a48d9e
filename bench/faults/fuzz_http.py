"""Fuzz of the HTTP APIs of both services: the app (`vlm-batch serve`) and the inference server
(vlmserve, tiny random model), each started here. Cases are hostile requests sent as raw bytes (bad
types, ranges, sizes, encodings, methods, headers, malformed Host included), fixed ones plus seeded random
mutations of valid requests. Reports the status-code histogram per service, every 5xx with its request,
and that both stay up and answer valid requests (checked every --check-every cases and at the end).

    .venv/bin/python bench/faults/fuzz_http.py --random 1500            # writes bench/results/faults_fuzz.json
    .venv/bin/python bench/faults/fuzz_http.py --random 60 --out target/faults_fuzz_ci.json
"""
from __future__ import annotations

import argparse
import base64
import collections
import json
import random
import socket
import sys
import time
from pathlib import Path

import services
from services import ROOT

BAD_VALUES = ["", "0", "-1", "2147483648", "99999999999999999999", "1e309", "NaN", "-Infinity", "abc", "%00", "%ff%fe",
              "../../etc/passwd", "<script>alert(1)</script>", "' OR 1=1 --", "\u202e\u0000", "é😀", "null", "true",
              "[]", "{}", "A" * 10000, "%", "%2", "%c0%ae%c0%ae/", "%252e%252e%252f"]
BAD_JSON_VALUES = [None, True, -1, 0, 2**31, 2**64, -2**63, 1e308, 3.5, "", "x" * 100000, "1", [], {}, [1, 2], {"a": {"b": []}},
                   "\ud800", "é😀\u0000", [None] * 1000, "NaN"]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "CONNECT", "FOO", "G\x00T", "get"]
HOSTS = ["evil.example", "local host", "[::1", "localhost:99999", "localhost:abc", "127.0.0.1:80:80", "", "a\x00b",
         "ﾟ.com", "localhost\t", "x" * 5000, "[::1]:1", "127.1", "0x7f.0.0.1", "localhost.", "LOCALHOST"]


def raw_request(port: int, data: bytes, timeout: float) -> tuple[str, bytes]:
    """Sends the bytes, returns (status or what happened instead, the answer)."""
    buf = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            buf = b""
            s.sendall(data)   # no half-close: a server may rightly take it for a client that went away
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
                if len(buf) > 2_000_000:
                    break
    except socket.timeout:
        return ("no answer in %gs" % timeout if not buf else _status(buf)), buf
    except ConnectionResetError:
        return "connection reset", b""
    except OSError as e:
        return f"error {e.__class__.__name__}", b""
    if not buf:
        return "closed without answer", b""
    return _status(buf), buf


def _status(buf: bytes) -> str:
    line = buf.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    return parts[1] if len(parts) > 1 and parts[0].startswith("HTTP/") else f"not HTTP: {line[:40]!r}"


def request(method: str, path: str, host: str, headers: list[tuple[str, str]] = (), body: bytes = b"",
            content_length: bool = True) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"] + [f"{k}: {v}" for k, v in headers]
    if content_length and body:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body


def tiny_png() -> bytes:
    return (ROOT / "samples" / "bar-chart.png").read_bytes()


def vlm_cases(port: int, rnd: random.Random, n_random: int):
    host = f"127.0.0.1:{port}"
    img = "data:image/png;base64," + base64.b64encode(tiny_png()).decode()

    def chat(**over):
        b = {"model": "tiny-random", "max_tokens": 4, "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": img}}, {"type": "text", "text": "hi"}]}]}
        for k, v in over.items():
            if v is _DEL:
                b.pop(k, None)
            else:
                b[k] = v
        return b

    def post(body, ctype="application/json", extra=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return request("POST", "/v1/chat/completions", host, [("Content-Type", ctype), *extra], data)

    fixed = []
    for field in ["max_tokens", "temperature", "top_p", "seed", "stop", "n", "stream", "model", "messages",
                  "structured_outputs", "response_format", "tools", "logprobs", "top_k", "presence_penalty", "user"]:
        for v in BAD_JSON_VALUES:
            fixed.append((f"{field}={str(v)[:30]!r}", post(chat(**{field: v}))))
    for v in BAD_JSON_VALUES:
        fixed.append((f"content={str(v)[:30]!r}", post(chat(messages=[{"role": "user", "content": v}]))))
        fixed.append((f"role={str(v)[:30]!r}", post(chat(messages=[{"role": v, "content": "hi"}]))))
        fixed.append((f"image_url={str(v)[:30]!r}", post(chat(messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": v}}]}]))))
        fixed.append((f"choice={str(v)[:30]!r}", post(chat(structured_outputs={"choice": v}))))
    for url in ["data:image/png;base64,!!!!", "data:image/png;base64," + "A" * 1001, "data:,", "data:image/jpeg;base64,/9j/",
                "http://169.254.169.254/latest/meta-data/", "file:///etc/passwd", "data:image/svg+xml;base64,PHN2Zz4=",
                "data:text/plain;base64,aGk=", "data:image/png;base64," + base64.b64encode(_bomb_png()).decode()]:
        fixed.append((f"image {url[:40]}", post(chat(messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "x"}]}]))))
    fixed += [
        ("stop x1000", post(chat(stop=["s"] * 1000))), ("stop long", post(chat(stop=["s" * 100000]))),
        ("choice x10000", post(chat(structured_outputs={"choice": [f"l{i}" for i in range(10000)]}))),
        ("choice long label", post(chat(structured_outputs={"choice": ["x" * 50000, "y"]}))),
        ("text 2MB", post(chat(messages=[{"role": "user", "content": "word " * 400000}]))),
        ("messages x5000", post(chat(messages=[{"role": "user", "content": "hi"}] * 5000))),
        ("images x50", post(chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": img}}] * 50}]))),
        ("nested json 100000", post(b"[" * 100000 + b"]" * 100000)),
        ("nested json 100000 open", post(b'{"a":' * 100000)),
        ("invalid utf-8", post(b'{"model": "\xff\xfe", "messages": []}')),
        ("utf-16 body", post(json.dumps(chat()).encode("utf-16"))),
        ("bom body", post(b"\xef\xbb\xbf" + json.dumps(chat()).encode())),
        ("not json", post(b"hello")), ("empty body", post(b"")), ("json null", post(b"null")), ("json array", post(b"[]")),
        ("trailing garbage", post(json.dumps(chat()).encode() + b"}}}")),
        ("duplicate keys", post(b'{"max_tokens": 4, "max_tokens": -5, "messages": [{"role":"user","content":"hi"}]}')),
        ("NaN literal", post(b'{"temperature": NaN, "messages": [{"role":"user","content":"hi"}]}')),
        ("huge int literal", post(b'{"max_tokens": ' + b"9" * 5000 + b', "messages": [{"role":"user","content":"hi"}]}')),
        ("text/plain", post(chat(), "text/plain")), ("no content type", request("POST", "/v1/chat/completions", host, [], json.dumps(chat()).encode())),
        ("json; charset=latin-1", post(chat(), "application/json; charset=latin-1")),
        ("content-length -1", request("POST", "/v1/chat/completions", host, [("Content-Type", "application/json"), ("Content-Length", "-1")], b"{}", False)),
        ("content-length abc", request("POST", "/v1/chat/completions", host, [("Content-Type", "application/json"), ("Content-Length", "abc")], b"{}", False)),
        ("content-length 1e12", request("POST", "/v1/chat/completions", host, [("Content-Type", "application/json"), ("Content-Length", "1000000000000")], b"{}", False)),
        ("two content-lengths", request("POST", "/v1/chat/completions", host, [("Content-Type", "application/json"), ("Content-Length", "2"), ("Content-Length", "3")], b"{}", False)),
        ("bad chunked", request("POST", "/v1/chat/completions", host, [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")], b"zz\r\n{}\r\n0\r\n\r\n", False)),
        ("chunked + length", request("POST", "/v1/chat/completions", host, [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked"), ("Content-Length", "5")], b"2\r\n{}\r\n0\r\n\r\n", False)),
        ("body 40MB", request("POST", "/v1/chat/completions", host, [("Content-Type", "application/json")], b"[" + b"1," * (20 * 2**20) + b"1]")),
        ("header 200KB", request("GET", "/health", host, [("X-Big", "x" * 200000)])),
        ("1000 headers", request("GET", "/health", host, [(f"X-{i}", "v") for i in range(1000)])),
        ("bad header name", request("GET", "/health", host, [("Bad Header", "v")])),
        ("header with NUL", request("GET", "/health", host, [("X-A", "a\x00b")])),
        ("header non-latin", request("GET", "/health", host, [("X-A", "é😀")])),
        ("auth garbage", request("GET", "/v1/models", host, [("Authorization", "Bearer " + "\xff" * 10)])),
        ("request line garbage", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(range(256))),
        ("HTTP/0.9", b"GET /health\r\n\r\n"), ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        ("HTTP/1.0 no host", b"GET /health HTTP/1.0\r\n\r\n"),
        ("absolute URI other host", b"GET http://evil.example/health HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"),
        ("path traversal", request("GET", "/../../etc/passwd", host)), ("path %00", request("GET", "/health%00", host)),
        ("path invalid utf-8", request("GET", "/v1/%ff%fe", host)), ("path 20KB", request("GET", "/" + "a" * 20000, host)),
        ("query garbage", request("GET", "/v1/models?%zz=%%%&a[]=1", host)),
        ("docs", request("GET", "/docs", host)), ("openapi", request("GET", "/openapi.json", host)),
    ]
    for m in METHODS:
        for path in ["/v1/chat/completions", "/v1/models", "/health", "/metrics", "/nope"]:
            fixed.append((f"{m!r} {path}", request(m, path, host, [("Content-Type", "application/json")], b"{}")))
    for h in HOSTS:
        fixed.append((f"Host {h[:30]!r}", request("GET", "/v1/models", h)))
    for name, data in fixed:
        yield name, data
    fields = ["max_tokens", "temperature", "top_p", "seed", "stop", "model", "stream", "structured_outputs", "n"]
    for i in range(n_random):
        over = {rnd.choice(fields): rnd.choice(BAD_JSON_VALUES + [rnd.uniform(-1e6, 1e6), rnd.randint(-2**70, 2**70)])
                for _ in range(rnd.randint(1, 3))}
        yield f"random {i}: {json.dumps(over, default=str)[:80]}", post(chat(**over))


class _Del:
    pass


_DEL = _Del()


def _bomb_png() -> bytes:
    import struct
    import zlib
    w = h = 30000
    raw = zlib.compress(b"\x00" * (1 + w // 8) * 64, 9)   # a header that promises 900 Mpx; the data is cut short

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def app_cases(port: int, rnd: random.Random, n_random: int, token: str):
    host = f"127.0.0.1:{port}"
    csrf = [("X-XSRF-TOKEN", token), ("Cookie", f"XSRF-TOKEN={token}")]
    png = tiny_png()

    def multipart(data: bytes, name="image", filename="a.png", ctype="image/png"):
        b = "fuzzboundary"
        body = (f"--{b}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n"
                f"Content-Type: {ctype}\r\n\r\n").encode("utf-8", "surrogateescape") + data + f"\r\n--{b}--\r\n".encode()
        return [("Content-Type", f"multipart/form-data; boundary={b}"), *csrf], body

    paths = ["/api/jobs", "/api/jobs/{v}", "/api/jobs/fuzz/runs?limit={v}", "/api/runs/{v}", "/api/runs/1/results?page={v}",
             "/api/runs/1/results?size={v}", "/api/runs/1/results?status={v}&task={v}&label={v}&q={v}",
             "/api/runs/{v}/items/{v}/thumbnail", "/api/playground/sessions/{v}", "/api/playground/sessions/{v}/image",
             "/{v}", "/actuator/{v}", "/static/{v}", "/assets/{v}"]
    posts = ["/api/jobs/fuzz/trigger?date={v}", "/api/jobs/{v}/trigger", "/api/jobs/fuzz/runs/{v}/restart",
             "/api/jobs/fuzz/runs/{v}/stop", "/api/jobs/fuzz/runs/2024-01-01/restart?params={v}"]
    fixed = []
    for p in paths:
        for v in BAD_VALUES:
            fixed.append((f"GET {p} v={v[:20]!r}", request("GET", p.replace("{v}", _enc(v)), host)))
    for p in posts:
        for v in BAD_VALUES:
            fixed.append((f"POST {p} v={v[:20]!r}", request("POST", p.replace("{v}", _enc(v)), host, csrf)))
    for v in BAD_JSON_VALUES:
        for field in ["question", "template", "maxTokens"]:
            body = json.dumps({field: v, **({"question": "hi"} if field != "question" else {})}).encode()
            fixed.append((f"ask {field}={str(v)[:20]!r}", request("POST", "/api/playground/sessions/nope/ask", host,
                                                                [("Content-Type", "application/json"), *csrf], body)))
    for name, (hdrs, body) in {
        "upload not image": multipart(b"hello"), "upload empty": multipart(b""), "upload bomb": multipart(_bomb_png()),
        "upload wrong field": multipart(png, name="file"), "upload hostile name": multipart(png, filename="<img src=x>\"';.png"),
        "upload name ../": multipart(png, filename="../../etc/passwd"), "upload text/html": multipart(png, ctype="text/html"),
        "upload 25MB": multipart(b"\x00" * (25 * 2**20)),
    }.items():
        fixed.append((name, request("POST", "/api/playground/sessions", host, hdrs, body)))
    fixed += [
        ("multipart no boundary", request("POST", "/api/playground/sessions", host, [("Content-Type", "multipart/form-data"), *csrf], b"x")),
        ("multipart broken", request("POST", "/api/playground/sessions", host, [("Content-Type", "multipart/form-data; boundary=b"), *csrf], b"--b\r\nnonsense")),
        ("ask not json", request("POST", "/api/playground/sessions/x/ask", host, [("Content-Type", "application/json"), *csrf], b"{")),
        ("ask nested", request("POST", "/api/playground/sessions/x/ask", host, [("Content-Type", "application/json"), *csrf], b"[" * 50000 + b"]" * 50000)),
        ("ask xml", request("POST", "/api/playground/sessions/x/ask", host, [("Content-Type", "application/xml"), *csrf], b"<a/>")),
        ("ask event-stream accept", request("POST", "/api/playground/sessions/x/ask", host, [("Content-Type", "application/json"), ("Accept", "text/event-stream"), *csrf], b"{}")),
        ("no csrf", request("POST", "/api/jobs/fuzz/trigger", host)),
        ("bad csrf", request("POST", "/api/jobs/fuzz/trigger", host, [("X-XSRF-TOKEN", "\xff" * 40), ("Cookie", "XSRF-TOKEN=\x00")])),
        ("cookie garbage", request("GET", "/api/jobs", host, [("Cookie", "=;;=;" + "a" * 8000)])),
        ("accept garbage", request("GET", "/api/jobs", host, [("Accept", "\x01/\x02;q=abc")])),
        ("accept xml", request("GET", "/api/nope", host, [("Accept", "application/xml")])),
        ("auth basic garbage", request("GET", "/api/jobs", host, [("Authorization", "Basic !!!")])),
        ("range garbage", request("GET", "/", host, [("Range", "bytes=9-1,-5,abc")])),
        ("if-modified garbage", request("GET", "/", host, [("If-Modified-Since", "yesterday")])),
        ("header 200KB", request("GET", "/api/jobs", host, [("X-Big", "x" * 200000)])),
        ("1000 headers", request("GET", "/api/jobs", host, [(f"X-{i}", "v") for i in range(1000)])),
        ("content-length -1", request("POST", "/api/jobs/fuzz/trigger", host, [*csrf, ("Content-Length", "-1")], b"x", False)),
        ("bad chunked", request("POST", "/api/jobs/fuzz/trigger", host, [*csrf, ("Transfer-Encoding", "chunked")], b"zz\r\n", False)),
        ("request line garbage", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(range(256))),
        ("HTTP/0.9", b"GET /api/jobs\r\n\r\n"), ("HTTP/1.0 no host", b"GET /api/jobs HTTP/1.0\r\n\r\n"),
        ("path invalid utf-8", request("GET", "/api/jobs/%ff%fe", host)), ("path ;jsessionid", request("GET", "/api/jobs;jsessionid=x", host)),
        ("path encoded slash", request("GET", "/api/jobs/a%2Fb", host)), ("path backslash", request("GET", "/api\\jobs", host)),
        ("path 20KB", request("GET", "/" + "a" * 20000, host)), ("path //", request("GET", "//api//jobs", host)),
        ("path /./", request("GET", "/api/./jobs/../jobs", host)),
    ]
    for m in METHODS:
        for p in ["/api/jobs", "/api/jobs/fuzz/trigger", "/api/playground/sessions", "/", "/actuator/health"]:
            fixed.append((f"{m!r} {p}", request(m, p, host, [("Content-Type", "application/json"), *csrf], b"{}")))
    for h in HOSTS:
        fixed.append((f"Host {h[:30]!r}", request("GET", "/api/jobs", h)))
    for name, data in fixed:
        yield name, data
    for i in range(n_random):
        p = rnd.choice(paths + posts)
        v = rnd.choice(BAD_VALUES + [str(rnd.randint(-2**70, 2**70)), "".join(chr(rnd.randint(1, 0x2FFF)) for _ in range(rnd.randint(1, 30)))])
        m = "POST" if p in posts else rnd.choice(["GET", "GET", "DELETE", "PUT"])
        yield f"random {i}: {m} {p} v={v[:30]!r}", request(m, p.replace("{v}", _enc(v, rnd.random() < 0.3)), host, csrf)


def _enc(v: str, raw: bool = False) -> str:
    if raw:
        return v.replace(" ", "%20").replace("\r", "").replace("\n", "")
    from urllib.parse import quote
    return quote(v, safe="%")


def valid_vlm(port: int) -> bool:
    body = json.dumps({"model": "tiny-random", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}).encode()
    s, _ = raw_request(port, request("POST", "/v1/chat/completions", f"127.0.0.1:{port}", [("Content-Type", "application/json")], body), 120)
    return s == "200"


def valid_app(port: int) -> bool:
    s, _ = raw_request(port, request("GET", "/api/jobs", f"127.0.0.1:{port}"), 60)
    return s == "200"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--random", type=int, default=1500, help="random cases per service on top of the fixed ones")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--check-every", type=int, default=50)
    ap.add_argument("--timeout", type=float, default=40, help="seconds to wait for an answer")
    ap.add_argument("--only", choices=["app", "vlmserve"], default=None)
    ap.add_argument("--fixed-sample", type=int, default=0, help="only this many of the fixed cases per service (seeded), for CI")
    ap.add_argument("--build-dir", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "faults_fuzz.json")
    args = ap.parse_args()
    work, jobs = services.job_folder("vlm-fuzz-")
    (jobs / "images" / "a.png").write_bytes(tiny_png())
    vlm = services.start_vlmserve(work)
    services.write_job(jobs, "fuzz", vlm.base, ["{ name: caption, template: describe, max_tokens: 4 }"])
    app = None if args.only == "vlmserve" else services.start_app_serve(work, jobs, vlm.base, args.build_dir)
    rnd = random.Random(args.seed)
    report = {"what": "fuzz of the HTTP APIs of vlm-batch serve and vlmserve (raw requests)",
              "command": "bench/faults/fuzz_http.py " + " ".join(sys.argv[1:]), "services": {}}
    started = time.monotonic()
    targets = []
    if args.only != "app":
        targets.append(("vlmserve", vlm, lambda: vlm_cases(int(vlm.base.rsplit(":", 1)[1]), rnd, args.random), valid_vlm))
    if app is not None:
        app_port = int(app.base.rsplit(":", 1)[1])
        token = _csrf_token(app_port)
        targets.append(("app", app, lambda: app_cases(app_port, rnd, args.random, token), valid_app))
    try:
        for name, svc, cases, valid in targets:
            port = int(svc.base.rsplit(":", 1)[1])
            hist = collections.Counter()
            five = []
            odd = []
            checks = [0, 0]
            n = 0
            listed = list(cases())
            if args.fixed_sample:
                fixed = [c for c in listed if not c[0].startswith("random ")]
                listed = rnd.sample(fixed, min(args.fixed_sample, len(fixed))) + [c for c in listed if c[0].startswith("random ")]
            for case, data in listed:
                status, body = raw_request(port, data, args.timeout)
                hist[status] += 1
                n += 1
                if status == "501" and case.startswith("'CONNECT'"):
                    hist["501 (CONNECT)"] += 1   # a proxy method; HTTP's answer for a method a server does not implement
                    hist[status] -= 1
                elif status.startswith("5"):
                    five.append({"case": case, "status": status, "answer": body[:400].decode("latin-1")})
                elif not status.isdigit():
                    odd.append({"case": case, "what": status})
                if n % args.check_every == 0:
                    checks[0] += 1
                    checks[1] += valid(port)
                    if not svc.alive():
                        five.append({"case": case, "status": "process exited", "answer": ""})
                        break
            checks[0] += 1
            checks[1] += valid(port)
            report["services"][name] = {"cases": n, "status_histogram": dict(sorted(hist.items())), "5xx": five,
                                        "no_http_answer": odd, "valid_requests_answered": f"{checks[1]}/{checks[0]}",
                                        "alive_at_end": svc.alive()}
    finally:
        if app:
            app.stop()
        vlm.stop()
    report["wall_s"] = round(time.monotonic() - started)
    report["machine"] = services.machine()
    services.write_result(args.out, report)
    for name, r in report["services"].items():
        print(f"\n{name}: {r['cases']} cases, alive at end: {r['alive_at_end']}, valid requests answered {r['valid_requests_answered']}")
        print(f"{'status':>28} | count")
        for k, v in r["status_histogram"].items():
            print(f"{k:>28} | {v}")
        for f in r["5xx"]:
            print(f"  5xx: {f['case']} -> {f['status']} {f['answer'][:200]!r}")
        for f in r["no_http_answer"]:
            print(f"  no HTTP answer: {f['case']} -> {f['what']}")


def _csrf_token(port: int) -> str:
    _, buf = raw_request(port, request("GET", "/api/jobs", f"127.0.0.1:{port}"), 60)
    for line in buf.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"set-cookie: xsrf-token="):
            return line.split(b"=", 1)[1].split(b";", 1)[0].decode()
    return ""


if __name__ == "__main__":
    main()
