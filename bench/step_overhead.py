"""CPU cost of one engine decode round outside the model: scheduling, the decode step's input staging, greedy
token choice, detokenization, output objects and their hand-off to the asyncio side, metrics.

    PYTHONPATH=inference python bench/step_overhead.py [--batches 1 16 64 128] [--steps 200] [--profile 64]

The engine is the real one on the tiny random model (CPU), fed through the server's own `submit` (outputs cross
to an asyncio loop on another thread, as in the HTTP server). Only the model's decode forward is replaced, here
and never in the product, by a call that returns precomputed random logits of the right shape: on the GPU that
forward is one CUDA-graph replay whose CPU cost is a launch, and the tiny model's eager CPU forward would swamp
what is measured. Every sequence runs with eos ignored and room for every step, so the batch stays full.

CPU ms per round is the engine thread's CPU time (time.thread_time); process CPU ms adds every other thread of the
process over the same span, mostly the asyncio thread woken to take the outputs (in the server that thread also
serves HTTP); wall ms is for reference (on a busy machine it includes waiting for a core).
Writes bench/results/step_overhead.json (or --out). --profile N prints cProfile's top functions for N sequences.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from vlmserve.chat import build_prompt
from vlmserve.engine import Engine, EngineConfig, GenerationRequest, submit
from vlmserve.tiny import make_tiny
from vlmserve.tokenizer import Tokenizer
from vlmserve.weights import load_model

PROMPT = "Describe this image in one long paragraph."


class LogitsBank:
    """Stands in for the decode forward: random logits [rows, vocab], a different precomputed block each call."""

    def __init__(self, rows: int, vocab: int, blocks: int = 16, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.blocks = torch.randn(blocks, rows, vocab, generator=g)
        self.calls = 0

    def forward(self, b: int, kv_len: int) -> torch.Tensor:
        self.calls += 1
        return self.blocks[self.calls % len(self.blocks), :b]


class Consumers:
    """An asyncio loop on its own thread that submits requests the server's way and drains their outputs."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="asyncio", daemon=True)
        self.thread.start()
        self.outputs = 0
        self.tasks: list[asyncio.Task] = []

    def start(self, engine: Engine, reqs: list[GenerationRequest]) -> None:
        async def go():
            self.tasks += [asyncio.ensure_future(self._drain(submit(engine, r))) for r in reqs]
        asyncio.run_coroutine_threadsafe(go(), self.loop).result(timeout=30)

    async def _drain(self, stream) -> None:
        async for _ in stream:
            self.outputs += 1

    def close(self) -> None:
        """After every stream has seen its last output (the engine ended them)."""
        async def rest():
            await asyncio.gather(*self.tasks)
        asyncio.run_coroutine_threadsafe(rest(), self.loop).result(timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def measure(model, tok, n: int, steps: int, warm: int, profile: bool = False) -> dict:
    engine = Engine(model, tok, EngineConfig(max_batch=n, max_waiting=n, prefix_cache=False, cuda_graphs=False))
    bank = LogitsBank(n, model.config.padded_vocab_size)
    engine.decoder._forward = bank.forward   # the bench's stand-in for the model, see the module docstring
    ids = build_prompt(tok, [{"role": "user", "content": PROMPT}], False)
    reqs = [GenerationRequest(f"r{i}", ids, None, None, None, ignore_eos=True) for i in range(n)]
    consumers = Consumers()
    try:
        consumers.start(engine, reqs)
        while len(engine.running) < n:        # admission and prefill (the real tiny model), not timed
            engine.run_round()
        for _ in range(warm):
            engine.run_round()
        prof = cProfile.Profile() if profile else None
        cpu, wall = [], []
        p0 = time.process_time()
        for _ in range(steps):
            if prof:
                prof.enable()
            c0, w0 = time.thread_time(), time.perf_counter()
            engine.run_round()
            c1, w1 = time.thread_time(), time.perf_counter()
            if prof:
                prof.disable()
            cpu.append(c1 - c0)
            wall.append(w1 - w0)
        process = time.process_time() - p0
        if len(engine.running) != n:
            raise SystemExit(f"{n} sequences: only {len(engine.running)} still running after the timed steps")
    finally:
        for r in reqs:
            engine.abort(r.request_id)
        engine.run_round()
        consumers.close()
    row = {"sequences": n, "steps": steps, "cpu_ms_per_round_mean": 1e3 * statistics.fmean(cpu),
           "cpu_ms_per_round_median": 1e3 * statistics.median(cpu), "wall_ms_per_round_median": 1e3 * statistics.median(wall),
           "cpu_us_per_sequence": 1e6 * statistics.fmean(cpu) / n, "process_cpu_ms_per_round": 1e3 * process / steps}
    if prof:
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(25)
        row["profile"] = s.getvalue()
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64, 128])
    p.add_argument("--steps", type=int, default=200, help="timed rounds per batch size")
    p.add_argument("--warm", type=int, default=20, help="untimed rounds first")
    p.add_argument("--profile", type=int, default=None, metavar="N", help="cProfile the rounds of N sequences")
    p.add_argument("--label", default="", help="stored with the figures (e.g. before / after a change)")
    p.add_argument("--out", default="bench/results/step_overhead.json")
    args = p.parse_args(argv)
    for name in ("steps", "warm"):
        if getattr(args, name) < (1 if name == "steps" else 0):
            p.error(f"--{name} out of range")
    if any(n < 1 or n > 4096 for n in args.batches):
        p.error("--batches: each from 1 to 4096")
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        ckpt = make_tiny(Path(d) / "tiny", seed=0)
        model, _ = load_model(ckpt, "cpu", "float32")
        tok = Tokenizer.from_dir(ckpt)
    rows = []
    print(f"{'sequences':>9} | {'CPU ms/round (mean)':>19} | {'CPU ms (median)':>15} | {'wall ms (median)':>16} | "
          f"{'CPU us/sequence':>15} | {'process CPU ms/round':>20}")
    for n in args.batches:
        r = measure(model, tok, n, args.steps, args.warm, profile=n == args.profile)
        rows.append({k: v for k, v in r.items() if k != "profile"})
        print(f"{n:>9} | {r['cpu_ms_per_round_mean']:>19.3f} | {r['cpu_ms_per_round_median']:>15.3f} | "
              f"{r['wall_ms_per_round_median']:>16.3f} | {r['cpu_us_per_sequence']:>15.1f} | "
              f"{r['process_cpu_ms_per_round']:>20.3f}", flush=True)
        if "profile" in r:
            print(r["profile"])
    result = {"what": "engine CPU time per decode round outside the model (tiny model, decode forward replaced by "
                      "precomputed logits in the bench)", "label": args.label,
              "command": "bench/step_overhead.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
                         f"torch {torch.__version__}", "rows": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
