"""Images/s with 1, 2, 4, 8 inference servers (one per GPU) behind the pipeline's pooling rule (issue 16).

    PYTHONPATH=inference python bench/multi_gpu.py --model /models/glm-4v-9b --counts 1,2,4,8
    PYTHONPATH=inference python bench/multi_gpu.py --cpu --model tiny-random --counts 1,2 --new-tokens 8   # smoke

For each count N it starts N `python -m vlmserve serve` processes (server i on cuda:i, or --servers-per-device
of them sharing a GPU, or on the CPU), waits until each answers GET /v1/models, and drives them over HTTP with
caption requests (one JPEG per image, --new-tokens forced with ignore_eos) from concurrent clients. Requests are
spread by the rule of the Java pipeline's EndpointPool (src/main/java/io/vlmbatch/inference/EndpointPool.java):
an image's requests go where that image already has requests in flight, any other request to the endpoint with
the fewest in flight; an endpoint that refuses a connection, or fails two health checks in a row, is taken out
(its request is retried on the others) and put back once it answers again. Reports per count: images/s, scaling
efficiency against one server, host CPU seconds per image (servers and client together, from /proc) and, when
efficiency is below 0.9, what the host figures point to. --kill-one-after-images K kills one server once K images
of the largest count's run are answered: the run must still answer every image (the pool survives).

The HTTP servers need fastapi and uvicorn (the lent GPU machines lack them: carry their wheels, see
/work/.library/device README's note on wheels), and a checkpoint folder (--model) or tiny-random.
Results: a table, and bench/results/multi_gpu.json (or $OUT/multi_gpu.json).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CHECK_EVERY_S = 1.0
UP_CHECK_TICKS = 3          # an endpoint in the pool is checked every 3rd tick, as in EndpointPool
MAX_ATTEMPTS = 4


# ---- the pool: EndpointPool's rule ------------------------------------------------------------------------
@dataclass(eq=False)
class Endpoint:
    name: str
    url: str
    in_flight: int = 0
    up: bool = True
    requests: int = 0
    answered: int = 0
    errors: int = 0
    failed_checks: int = 0
    taken_out: list[str] = field(default_factory=list)


class Pool:
    def __init__(self, endpoints: list[Endpoint]):
        self.endpoints = endpoints
        self.pins: dict[object, list] = {}   # key -> [endpoint, requests in flight for that key]
        self.changed = asyncio.Event()

    def _least_busy(self, avoid: Endpoint | None) -> Endpoint | None:
        up = [e for e in self.endpoints if e.up]
        others = [e for e in up if e is not avoid]
        pick = others or up
        return min(pick, key=lambda e: e.in_flight) if pick else None

    async def acquire(self, key, avoid: Endpoint | None = None, give_up_s: float = 60.0) -> Endpoint:
        """Where the key's image went if that endpoint is still in (and not `avoid`), else the least busy."""
        deadline = time.monotonic() + give_up_s
        while True:
            pin = self.pins.get(key) if key is not None else None
            if pin is not None and pin[0].up and pin[0] is not avoid:
                pin[1] += 1
                chosen = pin[0]
            else:
                chosen = self._least_busy(avoid)
                if chosen is not None and key is not None:
                    self.pins[key] = [chosen, (pin[1] if pin else 0) + 1]
            if chosen is not None:
                chosen.in_flight += 1
                chosen.requests += 1
                return chosen
            if time.monotonic() > deadline:
                raise RuntimeError(f"no inference endpoint answered for {give_up_s:.0f} s")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), 0.2)
            except asyncio.TimeoutError:
                pass

    def release(self, key, endpoint: Endpoint) -> None:
        endpoint.in_flight -= 1
        pin = self.pins.get(key) if key is not None else None
        if pin is not None:
            pin[1] -= 1
            if pin[1] <= 0:
                del self.pins[key]

    def take_out(self, e: Endpoint, reason: str) -> None:
        if e.up:
            e.up = False
            e.failed_checks = 0
            e.taken_out.append(reason)
            self.changed.set()

    def put_back(self, e: Endpoint) -> None:
        if not e.up:
            e.up = True
            self.changed.set()

    async def check_forever(self, client: httpx.AsyncClient) -> None:
        tick = 0
        while True:
            await asyncio.sleep(CHECK_EVERY_S)
            due = [e for e in self.endpoints if not e.up or tick % UP_CHECK_TICKS == 0]
            tick += 1
            results = await asyncio.gather(*(_healthy(client, e) for e in due))
            for e, ok in zip(due, results):
                if ok:
                    e.failed_checks = 0
                    self.put_back(e)
                elif e.up:
                    e.failed_checks += 1
                    if e.failed_checks >= 2:
                        self.take_out(e, "no answer to two health checks in a row")


async def _healthy(client: httpx.AsyncClient, e: Endpoint) -> bool:
    try:
        return (await client.get(f"{e.url}/v1/models", timeout=2.0)).status_code == 200
    except httpx.HTTPError:
        return False


# ---- servers ------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `python -m vlmserve serve` process."""

    def __init__(self, name: str, device: str, args, log_dir: Path):
        self.name, self.device, self.port = name, device, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"server_{name}.log"
        argv = [sys.executable, "-m", "vlmserve", "serve", "--model", args.model, "--port", str(self.port),
                "--device", device, "--max-batch", str(args.slots), "--quant", args.quant, "--log-level", "warning"]
        if args.max_model_len:
            argv += ["--max-model-len", str(args.max_model_len)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (str(ROOT / "inference"), os.environ.get("PYTHONPATH")) if p))
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server {self.name} exited with {self.proc.returncode}; see {self.log_path}:\n"
                                   + self.log_path.read_text(errors="replace")[-2000:])
            try:
                if httpx.get(f"{self.url}/v1/models", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"server {self.name} not ready after {timeout_s:.0f} s; see {self.log_path}")

    def cpu_seconds(self) -> float:
        """CPU time so far; after the process is gone, what it had used when last read."""
        now = proc_cpu_seconds(self.proc.pid)
        if now is not None:
            self._cpu = now
        return getattr(self, "_cpu", 0.0)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self._log.close()


def proc_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a live process (Linux /proc; None when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if fields[0] == "Z":  # killed, not yet reaped: its counters are no longer its own
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- load ------------------------------------------------------------------------------------------------
def image_data_url(size: int, seed: int) -> str:
    """A distinct JPEG per image (noise: no two images share a prefix in the servers' caches)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


async def one_request(client, pool: Pool, key, data_url: str, new_tokens: int, served: list) -> None:
    body = {"model": "glm-4v-9b", "max_tokens": new_tokens, "temperature": 0, "ignore_eos": True,
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url}},
                                                      {"type": "text", "text": "Describe this image."}]}]}
    failed = None
    for attempt in range(MAX_ATTEMPTS):
        e = await pool.acquire(key, failed)
        try:
            r = await client.post(f"{e.url}/v1/chat/completions", json=body, timeout=600.0)
        except httpx.TransportError as exc:  # refused, reset, cut off: the server is gone or going
            e.errors += 1
            pool.take_out(e, f"{type(exc).__name__}")
            failed = e
            continue
        finally:
            pool.release(key, e)
        if r.status_code == 200:
            e.answered += 1
            served.append((key, e.name))
            return
        e.errors += 1
        failed = e
        if r.status_code not in (429, 500, 502, 503, 504):
            raise RuntimeError(f"{e.name} answered {r.status_code}: {r.text[:300]}")
        await asyncio.sleep(0.2 * (attempt + 1))
    raise RuntimeError(f"image {key}: no answer after {MAX_ATTEMPTS} attempts")


async def drive(servers: list[Server], images: list[str], concurrency: int, tasks: int, new_tokens: int,
                kill_after: int | None) -> dict:
    endpoints = [Endpoint(s.name, s.url) for s in servers]
    pool = Pool(endpoints)
    served: list[tuple[int, str]] = []
    done = 0
    killed = None
    limits = httpx.Limits(max_connections=concurrency * tasks + 16, max_keepalive_connections=concurrency * tasks)
    async with httpx.AsyncClient(limits=limits) as client:
        checker = asyncio.create_task(pool.check_forever(client))
        queue = list(range(len(images)))

        async def worker():
            nonlocal done, killed
            while queue:
                i = queue.pop(0)
                await asyncio.gather(*(one_request(client, pool, i, images[i], new_tokens, served)
                                       for _ in range(tasks)))
                done += 1
                if kill_after is not None and killed is None and done >= kill_after and len(servers) > 1:
                    killed = servers[-1]
                    killed.cpu_seconds()  # its CPU time up to the kill still counts
                    killed.kill()

        cpu0 = sum(s.cpu_seconds() for s in servers) + time.process_time()
        t0 = time.perf_counter()
        try:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        finally:
            checker.cancel()
        wall = time.perf_counter() - t0
        cpu = sum(s.cpu_seconds() for s in servers) + time.process_time() - cpu0
    by_image: dict[int, set] = {}
    for key, name in served:
        by_image.setdefault(key, set()).add(name)
    return {"images": len(images), "requests": len(images) * tasks, "seconds": wall,
            "images_per_s": len(images) / wall, "host_cpu_s_per_image": cpu / len(images),
            "host_cores_busy": cpu / wall, "killed": killed.name if killed else None,
            "images_on_one_server": sum(len(v) == 1 for v in by_image.values()) / max(1, len(by_image)),
            "endpoints": [dict(name=e.name, requests=e.requests, answered=e.answered, errors=e.errors,
                               up=e.up, taken_out=e.taken_out) for e in endpoints]}


# ---- main ----------------------------------------------------------------------------------------------------
def positive_counts(text: str) -> list[int]:
    try:
        counts = [int(c) for c in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--counts must be comma-separated whole numbers, got {text!r}") from None
    if not counts or any(not 1 <= c <= 64 for c in counts):
        raise argparse.ArgumentTypeError(f"--counts must be between 1 and 64 each, got {text!r}")
    return sorted(set(counts))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="checkpoint folder or tiny-random")
    p.add_argument("--quant", choices=("none", "nf4", "fp8"), default="none")
    p.add_argument("--counts", type=positive_counts, default=[1, 2, 4, 8], help="server counts, e.g. 1,2,4,8")
    p.add_argument("--cpu", action="store_true", help="servers on the CPU (smoke run)")
    p.add_argument("--servers-per-device", type=int, default=1, help="servers sharing one GPU")
    p.add_argument("--slots", type=int, default=64, help="--max-batch of each server")
    p.add_argument("--max-model-len", type=int, default=None)
    p.add_argument("--concurrency-per-server", type=int, default=64)
    p.add_argument("--images-per-server", type=int, default=64)
    p.add_argument("--tasks", type=int, default=1, help="requests per image, sent together (as the pipeline does)")
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--image-size", type=int, default=1120)
    p.add_argument("--ready-timeout", type=float, default=600.0)
    p.add_argument("--kill-one-after-images", type=int, default=None,
                   help="kill one server once this many images of the largest count's run are answered")
    p.add_argument("--out", default=None, help="default: bench/results/multi_gpu.json, or $OUT/multi_gpu.json")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    for name in ("servers_per_device", "slots", "concurrency_per_server", "images_per_server", "tasks",
                 "new_tokens", "image_size"):
        if getattr(args, name) < 1:
            print(f"--{name.replace('_', '-')} must be at least 1", file=sys.stderr)
            return 2
    n_gpus = 0
    if not args.cpu:
        import torch

        n_gpus = torch.cuda.device_count()
        need = -(-max(args.counts) // args.servers_per_device)
        if n_gpus < need:
            print(f"{max(args.counts)} servers at {args.servers_per_device} per GPU need {need} GPUs; "
                  f"this machine has {n_gpus}", file=sys.stderr)
            return 2
    out = Path(args.out) if args.out else (Path(os.environ["OUT"]) / "multi_gpu.json" if os.environ.get("OUT")
                                           else ROOT / "bench/results/multi_gpu.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    # server logs stay out of $OUT (a device call returns at most 8 files); a server that fails shows its tail
    log_dir = Path(tempfile.mkdtemp(prefix="multi_gpu_logs_"))
    results = {"model": args.model, "quant": args.quant, "new_tokens": args.new_tokens, "tasks": args.tasks,
               "devices": "cpu" if args.cpu else f"{n_gpus} GPUs", "servers_per_device": args.servers_per_device,
               "host_cores": os.cpu_count(), "pool_rule": "EndpointPool: image affinity, else fewest in flight",
               "runs": []}
    base = None
    for count in args.counts:
        devices = ["cpu" if args.cpu else f"cuda:{i // args.servers_per_device}" for i in range(count)]
        servers = [Server(f"s{i}", d, args, log_dir) for i, d in enumerate(devices)]
        try:
            t = time.perf_counter()
            for s in servers:
                s.wait_ready(args.ready_timeout)
            ready_s = time.perf_counter() - t
            conc = args.concurrency_per_server * count
            warm = [image_data_url(args.image_size, 10_000 + i) for i in range(count)]
            asyncio.run(drive(servers, warm, count, 1, 4, None))   # first requests: kernels, graphs, tuning
            images = [image_data_url(args.image_size, count * 100_000 + i)
                      for i in range(args.images_per_server * count)]
            kill = args.kill_one_after_images if count == max(args.counts) else None
            r = asyncio.run(drive(servers, images, conc, args.tasks, args.new_tokens, kill))
        finally:
            for s in servers:
                s.stop()
        base = base or (r["images_per_s"] if count == 1 else None)
        r.update(servers=count, devices=devices, concurrency=conc, ready_s=ready_s,
                 efficiency_vs_1=r["images_per_s"] / (count * base) if base else None)
        if r["efficiency_vs_1"] is not None and r["efficiency_vs_1"] < 0.9:
            r["limit_hint"] = limit_hint(r, os.cpu_count() or 1)
        results["runs"].append(r)
        out.write_text(json.dumps(results, indent=2))
        eff = f"{r['efficiency_vs_1']:.2f}" if r["efficiency_vs_1"] is not None else "-"
        print(f"servers {count:2d}  {r['images']:4d} img  {r['seconds']:7.1f} s  {r['images_per_s']:7.3f} img/s  "
              f"efficiency {eff:>5}  host CPU {r['host_cpu_s_per_image']:6.3f} s/img "
              f"({r['host_cores_busy']:.1f} cores busy){'  killed ' + r['killed'] if r['killed'] else ''}",
              flush=True)
    print(f"wrote {out}")
    return 0


def limit_hint(run: dict, cores: int) -> str:
    if run["host_cores_busy"] > 0.8 * cores:
        return f"host CPU: {run['host_cores_busy']:.1f} of {cores} cores busy (image decoding, HTTP, schedulers)"
    if run["killed"]:
        return "one server was killed during the run"
    spread = [e["answered"] for e in run["endpoints"]]
    if max(spread) > 1.5 * max(1, min(spread)):
        return f"uneven spread over the servers (answered {spread})"
    return "not the host CPU or the spread: per-server rate (GPU, PCIe, or servers sharing a GPU)"


if __name__ == "__main__":
    sys.exit(main())
