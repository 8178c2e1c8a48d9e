"""Soak: the app (`vlm-batch serve`) and the inference server (tiny random model) under a steady load
for a while, reporting memory (RSS of both, the app's JVM heap after a full GC) and latency drift
(p50/p95 per window) of each.

The steady load, each stream paced at a fixed interval (closed loop: a slow answer delays the next):
  server      a chat completion with an image straight to vlmserve            every --server-every s
  playground  an upload + a question through the app's playground (app -> server) every --playground-every s
  api         GET /api/jobs and the soak job's runs list from the app          every --api-every s
  runs        a pipeline run of the soak job (images x 3 tasks, reuse off) triggered through the API,
              the next one --run-pause s after the previous succeeded

    .venv/bin/python bench/faults/soak.py --minutes 30 --window-s 300      # writes bench/results/faults_soak.json
    .venv/bin/python bench/faults/soak.py --minutes 1 --window-s 20 --out target/faults_soak_ci.json
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import http.client
import json
import sys
import shutil
import threading
import time
import uuid
from pathlib import Path

import services
from services import ROOT, percentile


class Series:
    """(seconds since start, latency s, ok) samples of one stream, thread-safe."""

    def __init__(self, name: str):
        self.name = name
        self.samples: list[tuple[float, float, bool]] = []
        self.lock = threading.Lock()

    def add(self, t: float, latency: float, ok: bool) -> None:
        with self.lock:
            self.samples.append((t, latency, ok))

    def window(self, start: float, end: float) -> dict:
        with self.lock:
            xs = [s for s in self.samples if start <= s[0] < end]
        lat = [s[1] for s in xs if s[2]]
        return {"n": len(xs), "errors": sum(1 for s in xs if not s[2]),
                "p50_ms": _ms(percentile(lat, 0.5)), "p95_ms": _ms(percentile(lat, 0.95))}


def _ms(v):
    return None if v is None else round(v * 1000, 1)


def _request(base: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
             timeout: float = 120) -> tuple[int, bytes, http.client.HTTPResponse]:
    host, port = base.removeprefix("http://").split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, data, r
    finally:
        c.close()


class AppClient:
    """The app's API with its CSRF cookie (Spring Security's XSRF-TOKEN, echoed as X-XSRF-TOKEN)."""

    def __init__(self, base: str):
        self.base = base
        self.token = None

    def _csrf(self) -> dict:
        if self.token is None:
            _, _, r = _request(self.base, "GET", "/api/jobs")
            for h in r.headers.get_all("Set-Cookie") or []:
                if h.startswith("XSRF-TOKEN="):
                    self.token = h.split(";", 1)[0].split("=", 1)[1]
        return {"X-XSRF-TOKEN": self.token or "", "Cookie": f"XSRF-TOKEN={self.token}"}

    def get(self, path: str) -> tuple[int, bytes]:
        s, d, _ = _request(self.base, "GET", path)
        return s, d

    def post(self, path: str, body: bytes = b"", content_type: str | None = None) -> tuple[int, bytes]:
        h = self._csrf()
        if content_type:
            h["Content-Type"] = content_type
        s, d, _ = _request(self.base, "POST", path, body, h)
        return s, d


def paced(stop: threading.Event, every: float, fn) -> None:
    nxt = time.monotonic()
    while not stop.is_set():
        fn()
        nxt += every
        delay = nxt - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        else:
            nxt = time.monotonic()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--window-s", type=float, default=300)
    ap.add_argument("--server-every", type=float, default=1.0)
    ap.add_argument("--playground-every", type=float, default=3.0)
    ap.add_argument("--api-every", type=float, default=2.0)
    ap.add_argument("--run-images", type=int, default=20)
    ap.add_argument("--run-pause", type=float, default=20)
    ap.add_argument("--memory-every", type=float, default=30)
    ap.add_argument("--nice", type=int, default=0, help="start both services under nice -n N")
    ap.add_argument("--build-dir", type=Path, default=None, help="where target/vlm-batch.jar is (default: target)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "faults_soak.json")
    args = ap.parse_args()

    work, jobs = services.job_folder("vlm-soak-")
    samples = sorted(p for p in (ROOT / "samples").iterdir() if p.suffix in (".jpg", ".png"))
    # distinct names, repeated content: reuse is off, so every run asks every (image, task) again
    for i in range(args.run_images):
        src = samples[i % len(samples)]
        shutil.copy(src, jobs / "images" / f"img{i:03d}{src.suffix}")
    cat = (ROOT / "samples" / "cat.jpg").read_bytes()
    vlm = services.start_vlmserve(work, args.nice)
    services.write_job(jobs, "soak", vlm.base, [
        "{ name: caption, template: describe, max_tokens: 16 }",
        "{ name: text, template: ocr, max_tokens: 16 }",
        "{ name: kind, template: classify, labels: [photo, document, chart] }"], concurrency=4,
        more='run: { chunk_size: 4, partitions: 2, reuse: false }\n'
             'output: { csv: "out/{{ job }}-{{ ds_nodash }}.csv" }\n')
    app = services.start_app_serve(work, jobs, vlm.base, args.build_dir, args.nice)
    client = AppClient(app.base)
    print(f"soak: app pid {app.pid} at {app.base}, vlmserve pid {vlm.pid} at {vlm.base}; work {work}", flush=True)

    t0 = time.monotonic()
    stop = threading.Event()
    server_s, playground_s, api_s, runs_s = Series("server"), Series("playground"), Series("api"), Series("runs")
    memory: list[dict] = []
    failures: list[str] = []
    data_url = "data:image/jpeg;base64," + base64.b64encode(cat).decode()

    def note(msg: str) -> None:
        if len(failures) < 50:
            failures.append(f"{time.monotonic() - t0:.0f}s {msg}")

    def timed(series: Series, what: str, call) -> None:
        """One timed request: an answer other than 200, or no answer, is a failure of the stream and noted."""
        start = time.monotonic()
        try:
            s, d = call()
            ok = s == 200
            if not ok:
                note(f"{what} {s} {d[:200]!r}")
        except OSError as e:
            ok = False
            note(f"{what} {e!r}")
        series.add(start - t0, time.monotonic() - start, ok)

    def server_once():
        body = json.dumps({"model": "tiny-random", "max_tokens": 16, "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": data_url}}, {"type": "text", "text": "Describe the image."}]}]}).encode()
        timed(server_s, "server", lambda: _request(vlm.base, "POST", "/v1/chat/completions", body,
                                                   {"Content-Type": "application/json"})[:2])

    def playground_once():
        boundary = uuid.uuid4().hex
        form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"cat.jpg\"\r\n"
                f"Content-Type: image/jpeg\r\n\r\n").encode() + cat + f"\r\n--{boundary}--\r\n".encode()
        try:
            s, d = client.post("/api/playground/sessions", form, f"multipart/form-data; boundary={boundary}")
            if s != 200:
                note(f"playground upload {s} {d[:200]!r}")
                playground_s.add(time.monotonic() - t0, 0, False)
                return
            sid = json.loads(d)["id"]
            start = time.monotonic()
            s, d = client.post(f"/api/playground/sessions/{sid}/ask",
                               json.dumps({"template": "describe", "maxTokens": 16}).encode(), "application/json")
            ok = s == 200 and b"event:done" in d.replace(b"event: ", b"event:")
            if not ok:
                note(f"playground ask {s} {d[-200:]!r}")
            playground_s.add(start - t0, time.monotonic() - start, ok)
        except (OSError, ValueError, KeyError) as e:
            note(f"playground {e!r}")
            playground_s.add(time.monotonic() - t0, 0, False)

    def api_once():
        for path in ("/api/jobs", "/api/jobs/soak/runs"):
            timed(api_s, f"api {path}", lambda: client.get(path))

    def runs_loop():
        day = dt.date(2024, 1, 1)
        while not stop.is_set():
            start = time.monotonic()
            date = day.isoformat()
            day += dt.timedelta(days=1)
            try:
                s, d = client.post(f"/api/jobs/soak/trigger?date={date}")
                if s != 200:
                    note(f"trigger {s} {d[:200]!r}")
                    runs_s.add(start - t0, 0, False)
                    stop.wait(args.run_pause)
                    continue
                state = ""
                while not stop.is_set() and state not in ("success", "failed"):
                    stop.wait(1)
                    s, d = client.get("/api/jobs/soak/runs")
                    for r in json.loads(d) if s == 200 else []:
                        if r.get("logicalDate") == date:
                            state = r.get("state", "")
                if state in ("success", "failed"):   # a run the end of the soak cut short counts for nothing
                    runs_s.add(start - t0, time.monotonic() - start, state == "success")
                    if state != "success":
                        note(f"run {date} {state}")
            except (OSError, ValueError) as e:
                note(f"run {date} {e!r}")
                runs_s.add(start - t0, 0, False)
            stop.wait(args.run_pause)

    jcmd = services.jcmd()

    def memory_loop():
        while not stop.is_set():
            memory.append({"t_s": round(time.monotonic() - t0, 1), "app_rss_mib": _mib(services.rss_bytes(app.pid)),
                           "server_rss_mib": _mib(services.rss_bytes(vlm.pid)),
                           "app_heap_after_gc_mib": _mib(services.heap_after_gc(app.pid, jcmd))})
            stop.wait(args.memory_every)

    threads = [threading.Thread(target=paced, args=(stop, args.server_every, server_once), daemon=True),
               threading.Thread(target=paced, args=(stop, args.playground_every, playground_once), daemon=True),
               threading.Thread(target=paced, args=(stop, args.api_every, api_once), daemon=True),
               threading.Thread(target=runs_loop, daemon=True), threading.Thread(target=memory_loop, daemon=True)]
    for t in threads:
        t.start()
    total = args.minutes * 60
    try:
        while time.monotonic() - t0 < total:
            time.sleep(5)
            if not (app.alive() and vlm.alive()):
                note("a service exited")
                break
    finally:
        stop.set()
        for t in threads:
            t.join(180)
    elapsed = time.monotonic() - t0
    alive = {"app": app.alive(), "server": vlm.alive()}
    # still answering after the load
    final_ok = {"app": _answers(lambda: client.get("/api/jobs")[0]),
                "server": _answers(lambda: services.get(vlm.base + "/health")[0])}
    app.stop()
    vlm.stop()

    windows = []
    w = 0.0
    while w < elapsed - 2:  # a last sliver of a window (the shutdown) says nothing
        end = min(w + args.window_s, elapsed)
        windows.append({"from_s": round(w), "to_s": round(end), "server": server_s.window(w, end),
                        "playground": playground_s.window(w, end), "api": api_s.window(w, end),
                        "runs": runs_s.window(w, end)})
        w = end
    result = {
        "what": "soak: steady load on the app (vlm-batch serve) and vlmserve (tiny random model)",
        "command": "bench/faults/soak.py " + " ".join(sys.argv[1:]),
        "machine": services.machine() + (f"; both services under nice -n {args.nice}" if args.nice else ""),
        "duration_s": round(elapsed), "window_s": args.window_s,
        "load": {"server_every_s": args.server_every, "playground_every_s": args.playground_every,
                 "api_every_s": args.api_every, "run_images": args.run_images, "run_tasks": 3, "run_pause_s": args.run_pause},
        "windows": windows, "memory": memory,
        "errors": sum(x["errors"] for win in windows for k, x in win.items() if isinstance(x, dict)),
        "failures": failures, "alive_at_end": alive, "answering_at_end": final_ok,
        "drift": _drift(windows, memory),
    }
    services.write_result(args.out, result)
    _print_table(result)
    shutil.rmtree(work, ignore_errors=True)


def _answers(fn) -> bool:
    try:
        return fn() == 200
    except OSError:
        return False


def _mib(v):
    return None if v is None else round(v / 2**20, 1)


def _drift(windows: list[dict], memory: list[dict]) -> dict:
    out = {}
    if len(windows) >= 2:
        first, last = windows[0], windows[-1]
        for k in ("server", "playground", "api"):
            out[f"{k}_p50_ms_first_last"] = [first[k]["p50_ms"], last[k]["p50_ms"]]
            out[f"{k}_p95_ms_first_last"] = [first[k]["p95_ms"], last[k]["p95_ms"]]
    for k in ("app_rss_mib", "server_rss_mib", "app_heap_after_gc_mib"):
        xs = [m[k] for m in memory if m[k] is not None]
        if xs:
            out[f"{k}_first_last_max"] = [xs[0], xs[-1], max(xs)]
    return out


def _print_table(r: dict) -> None:
    print(f"\nsoak {r['duration_s']} s ({r['machine']})")
    print(f"{'window':>11} | {'server p50/p95 ms':>18} | {'playground p50/p95':>19} | {'api p50/p95 ms':>15} | {'runs n/p50 s':>13} | err")
    for w in r["windows"]:
        def pp(x):
            return f"{x['p50_ms']}/{x['p95_ms']}" if x["p50_ms"] is not None else "-"
        err = sum(w[k]["errors"] for k in ("server", "playground", "api", "runs"))
        print(f"{w['from_s']:>5}-{w['to_s']:<5} | {pp(w['server']):>18} | {pp(w['playground']):>19} | {pp(w['api']):>15} | "
              f"{w['runs']['n']:>4}/{w['runs']['p50_ms'] and round(w['runs']['p50_ms'] / 1000, 1)!s:>8} | {err}")
    print(f"{'t s':>6} | {'app RSS MiB':>11} | {'heap after GC MiB':>17} | {'server RSS MiB':>14}")
    for m in r["memory"]:
        print(f"{m['t_s']:>6} | {m['app_rss_mib']!s:>11} | {m['app_heap_after_gc_mib']!s:>17} | {m['server_rss_mib']!s:>14}")
    print("drift:", json.dumps(r["drift"]))
    print("errors:", r["errors"], "alive at end:", r["alive_at_end"], "answering at end:", r["answering_at_end"])


if __name__ == "__main__":
    main()
