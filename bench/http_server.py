"""HTTP cost of vlmserve: the real HTTP server (uvicorn + the vlmserve app: body reading, JSON, base64,
image decoding and the model's 1120x1120 preprocessing, tokenizing) in front of an engine that answers
at once, so every CPU second measured is HTTP-side work. The question it answers: can the HTTP path
ever be the limit? The GPU engine serves ~3.9 caption images/s on an H200, so the HTTP side must
sustain at least 10x that on a few cores.

Clients post 1120x1120 JPEG data URLs (distinct photo-like images, as the pipeline sends them) from a
separate process. The server's figure is requests per second of its own CPU time (user + system, read
from /proc), i.e. requests/s per core; with `--server-cpus` the server is pinned to those cores and its
wall-clock rate is reported too.

    PYTHONPATH=inference python bench/http_server.py [--seconds 20] [--concurrency 8] [--prep-workers 2]
        [--server-cpus 0-3] [--client-cpus 4-15]
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GPU_IMAGES_PER_S = 3.87      # the engine's measured caption rate on the H200 (bf16, concurrency 128)


# ---- server side ----------------------------------------------------------------------------------
class InstantEngine:
    """A benchmark harness, not a model: an engine with the real engine's interface that answers every
    request at once with a one-token reply, so the server's CPU time is all HTTP-side work."""

    def __init__(self, image_size: int = 1120, slot_len: int = 8192, n_vision: int = 1602):
        import torch

        from vlmserve.metrics import EngineMetrics

        self.image_size, self.slot_len, self.n_vision = image_size, slot_len, n_vision
        self.metrics = EngineMetrics()
        self.running: list = []
        self.n_slots = 1
        self.device = torch.device("cpu")   # where the real engine's model lives: decides whether images are pinned

    def start(self):
        return self

    def stop(self) -> None:
        pass

    def check_fits(self, prompt_ids, has_image: bool, max_tokens) -> None:
        from vlmserve.engine import ContextTooLong

        n = len(prompt_ids) + (self.n_vision - 3 if has_image else 0)
        if n + (max_tokens or 1) > self.slot_len:
            raise ContextTooLong(f"prompt of {n} tokens + {max_tokens} > {self.slot_len}")

    def submit(self, req) -> None:
        from vlmserve.engine import Output

        self.metrics.requests_finished.inc()
        req.sink(Output(req.request_id, text="ok", finished=True, finish_reason="stop",
                        prompt_tokens=len(req.prompt_ids), completion_tokens=1))
        if req.flush is not None:   # as the engine does after each round's outputs
            req.flush()

    def abort(self, request_id: str) -> None:
        pass


def serve(port: int, prep_workers: int) -> None:
    import uvicorn

    from vlmserve.http_app import HttpLimits, build_app
    from vlmserve.images_in import ImagePolicy
    from vlmserve.read_timeout import with_header_timeout
    from vlmserve.tiny import ensure_tiny
    from vlmserve.tokenizer import Tokenizer

    engine = InstantEngine()
    tokenizer = Tokenizer.from_dir(ensure_tiny())
    app = build_app(engine, tokenizer, ["glm-4v-9b"], ImagePolicy(target_size=engine.image_size),
                    HttpLimits(prep_workers=prep_workers))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                http=with_header_timeout(30.0))


# ---- client side ----------------------------------------------------------------------------------
def photo_jpeg(seed: int, size: int = 1120) -> bytes:
    """A photo-like 1120x1120 JPEG: smooth gradients plus sensor-like noise (about 0.2-0.4 MB at q=90)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = np.stack([np.sin(6 * x + seed) * 80 + 120, np.cos(5 * y + seed) * 70 + 110, (x + y) * 60 + 60], -1)
    noisy = base + rng.normal(0, 9, base.shape)
    buf = io.BytesIO()
    Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def request_bytes(jpeg: bytes, port: int) -> bytes:
    url = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
    body = json.dumps({"model": "glm-4v-9b", "max_tokens": 1, "temperature": 0, "messages": [{"role": "user",
                       "content": [{"type": "image_url", "image_url": {"url": url}},
                                   {"type": "text", "text": "Describe this image."}]}]}).encode()
    return (f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def read_response(sock: socket.socket, buf: bytearray) -> int:
    """Reads one HTTP response (Content-Length framed) from a keep-alive socket; returns its status."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = next(int(v) for k, _, v in (ln.partition(b":") for ln in lines[1:]) if k.strip().lower() == b"content-length")
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        rest += chunk
    buf[:] = rest[length:]
    return status


def client_loop(port: int, payloads: list[bytes], stop_at: float, counts: dict, lock: threading.Lock, offset: int):
    """One keep-alive connection sending requests back to back (raw sockets keep the client's own CPU
    cost low, so the server, not the load generator, is what is measured)."""
    sock = socket.create_connection(("127.0.0.1", port))
    buf = bytearray()
    i = offset
    while time.perf_counter() < stop_at:
        sock.sendall(payloads[i % len(payloads)])
        status = read_response(sock, buf)
        with lock:
            counts[status] = counts.get(status, 0) + 1
        i += 1
    sock.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")    # utime + stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(cmd: list[str], cpus: str | None) -> list[str]:
    return (["taskset", "-c", cpus] if cpus else []) + cmd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--prep-workers", type=int, default=2)
    ap.add_argument("--images", type=int, default=16, help="distinct JPEGs cycled through")
    ap.add_argument("--server-cpus", default=None, help="pin the server to these CPUs (taskset list, e.g. 0-3)")
    ap.add_argument("--client-cpus", default=None, help="pin the load generator to these CPUs")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "http_server.json"))
    ap.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)   # internal: run the server
    ap.add_argument("--load", default=None, help=argparse.SUPPRESS)              # internal: run the clients
    args = ap.parse_args()
    if args.serve is not None:
        return serve(args.serve, args.prep_workers)
    if args.load is not None:
        return load(args)

    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "inference"), os.environ.get("PYTHONPATH")]))}
    server = subprocess.Popen(pinned([sys.executable, __file__, "--serve", str(port), "--prep-workers",
                                      str(args.prep_workers)], args.server_cpus), env=env)
    try:
        deadline = time.time() + 120
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise SystemExit("the benchmark server did not start")
                time.sleep(0.3)
        report = json.loads(subprocess.run(
            pinned([sys.executable, __file__, "--load", str(port), "--seconds", str(args.seconds), "--warmup",
                    str(args.warmup), "--concurrency", str(args.concurrency), "--images", str(args.images)],
                   args.client_cpus), env=env, check=True, capture_output=True, text=True,
            input=str(server.pid)).stdout)
    finally:
        server.terminate()
        server.wait(timeout=30)

    per_core = report["requests_per_server_cpu_s"]
    result = {
        "what": "vlmserve HTTP server with an instant engine: 1120x1120 JPEG data URLs, full request path "
                "(HTTP, JSON, base64, JPEG decode, 1120 preprocessing, tokenizing, response)",
        "machine": {"cpu": _cpu_model(), "logical_cpus": os.cpu_count(), "python": platform.python_version(),
                    "server_cpus": args.server_cpus or "unpinned", "client_cpus": args.client_cpus or "unpinned"},
        "settings": {"seconds": args.seconds, "concurrency": args.concurrency, "prep_workers": args.prep_workers,
                     "distinct_images": args.images},
        **report,
        "gpu_images_per_s": GPU_IMAGES_PER_S,
        "cores_for_10x_gpu_rate": round(10 * GPU_IMAGES_PER_S / per_core, 2),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{'requests':>10} {'wall s':>8} {'req/s':>8} {'server CPU s':>13} {'req/s per core':>15} {'cores for 10x GPU':>18}")
    print(f"{report['requests']:>10} {report['wall_s']:>8.1f} {report['requests_per_s']:>8.1f} "
          f"{report['server_cpu_s']:>13.1f} {per_core:>15.1f} {result['cores_for_10x_gpu_rate']:>18}")
    print(f"mean request body {report['mean_body_bytes'] / 1e6:.2f} MB; statuses {report['statuses']}; written to {args.out}")


def load(args) -> None:
    """The load generator (its own process): prints one JSON report on stdout."""
    port = int(args.load)
    server_pid = int(sys.stdin.read().strip())
    jpegs = [photo_jpeg(i) for i in range(args.images)]
    payloads = [request_bytes(j, port) for j in jpegs]
    lock = threading.Lock()

    def run(seconds: float) -> dict:
        counts: dict = {}
        stop_at = time.perf_counter() + seconds
        threads = [threading.Thread(target=client_loop, args=(port, payloads, stop_at, counts, lock, k * 3))
                   for k in range(args.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return counts

    run(args.warmup)
    cpu0, t0 = cpu_seconds(server_pid), time.perf_counter()
    counts = run(args.seconds)
    wall, cpu = time.perf_counter() - t0, cpu_seconds(server_pid) - cpu0
    ok = counts.get(200, 0)
    print(json.dumps({
        "requests": ok, "statuses": {str(k): v for k, v in sorted(counts.items())},
        "wall_s": round(wall, 2), "requests_per_s": round(ok / wall, 2),
        "server_cpu_s": round(cpu, 2), "requests_per_server_cpu_s": round(ok / cpu, 2),
        "mean_jpeg_bytes": int(sum(map(len, jpegs)) / len(jpegs)),
        "mean_body_bytes": int(sum(map(len, payloads)) / len(payloads)),
    }))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
