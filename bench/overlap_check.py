"""Can decode steps run beside a prefill round on one GPU, and does that finish the two sooner than one after the other?

The engine runs a prefill round (the vision tower and the decoder over a few new image prompts, compute-bound) and
then decode steps (memory-bound: every weight read for one token per running row) in turn on one stream. At 64
running rows a decode step reads the weights for half as many tokens as at 128, which is what keeps concurrency 64
below the best throughput. This bench launches the engine's own prefill work (4 images: `encode_images`, then the
decoder over the 4 prompts into free KV slots) on one CUDA stream and, while it runs, replays the engine's captured
decode step (`DecodeStep.run`, then the host reads the tokens as the engine does) on a second stream, and reports:

- prefill alone, one decode step alone (median of several), and one decode step replayed on a stream of a green
  context of 16 and 32 multiprocessors;
- overlapped, for the prefill on the whole GPU and on green contexts of `--green` multiprocessors (the decode steps'
  CUDA graphs captured at high priority): wall time from the prefill's launch (from a second host thread) to its
  end, the decode steps completed in that time, the time the same work takes one after the other (prefill alone +
  steps x step), and their ratio (> 1: overlap pays).

Full-size GLM-4V-9B, random weights made on the GPU, bf16 and FP8. Prints a table; writes
bench/results/overlap_check.json (or $OUT/...). On an H100 (bench/results/gpu_session_2026-12-06e) the pair finished
1.07-1.16x sooner, with 40-77 decode steps per round; serving needs 8-17, and the engine built on it served no more
images/s (docs/serving.md), so it was removed.

    PYTHONPATH=inference:bench python bench/overlap_check.py [--quant none fp8] [--rows 64 128]
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import threading
import time

import torch

from result_path import result_path
from serve_throughput import SLOT_LEN, IdTokenizer, build_model, prompt, quantize_linears
from vlmserve.engine import Engine, EngineConfig

IMAGES = 4


class Work:
    """The engine's prefill round and decode step, without its scheduler."""

    def __init__(self, model, rows: int):
        self.engine = Engine(model, IdTokenizer(), EngineConfig(max_batch=rows + IMAGES, slot_len=SLOT_LEN,
                                                                kv_budget_tokens=(rows + IMAGES) * SLOT_LEN))
        self.rows = rows
        self.engine.decoder.capture_priority = -1   # high: the steps' kernels take free multiprocessors first
        self.engine.decoder.warm_up(SLOT_LEN)
        cfg = model.config
        size = cfg.vision.image_size
        self.pixels = torch.randn(IMAGES, 3, size, size, device="cuda", dtype=torch.bfloat16)
        self.ids = [prompt("caption")] * IMAGES
        self.at = 1700                      # decode rows mid-answer: the 2,048-key graph

    def prefill(self) -> None:
        e = self.engine
        e.attn.plan_prefill(list(range(self.rows, self.rows + IMAGES)), [0] * IMAGES)
        vision = e.model.encode_images(self.pixels)
        embeds, positions = e._embed_rows(self.ids, list(vision))
        hidden = e.model.forward_embeds(embeds, positions, e.attn)
        e.model.logits(hidden[:, -1])

    def step(self) -> list[int]:
        n = self.rows
        logits = self.engine.decoder.run([1000] * n, [self.at] * n, [self.at] * n)
        return logits.argmax(dim=-1).tolist()   # the engine's host read: waits for this stream only


def timed(fn, reps: int, stream=None) -> float:
    out = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.cuda.stream(stream or torch.cuda.current_stream()):
            fn()
        torch.cuda.synchronize()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


_GREEN = {}   # the contexts outlive their streams' use: a collected context is destroyed with its streams


def green_stream(n_sms: int):
    """A stream whose kernels run on `n_sms` multiprocessors only (a CUDA green context), or the reason it can't."""
    try:
        from torch.cuda.green_contexts import GreenContext
        if n_sms not in _GREEN:
            _GREEN[n_sms] = GreenContext.create(num_sms=n_sms)
        return _GREEN[n_sms].Stream(), None
    except Exception as e:  # noqa: BLE001 - no green contexts in this build / driver / virtual machine
        return None, f"{type(e).__name__}: {e}"


def overlapped(work: Work, pre: torch.cuda.Stream, dec: torch.cuda.Stream) -> dict:
    """The prefill launched from a second host thread (a synchronising op in it then blocks only that thread, as
    the engine's prefill would if it ran on its own thread), decode steps on this thread until the prefill ends."""
    done = torch.cuda.Event()
    launched = threading.Event()
    launch_s = []

    def launch():
        with torch.cuda.stream(pre):
            work.prefill()
            done.record(pre)
        launch_s.append(time.perf_counter() - t)
        launched.set()

    torch.cuda.synchronize()
    t = time.perf_counter()
    thread = threading.Thread(target=launch)
    thread.start()
    steps = 0
    with torch.cuda.stream(dec):
        while not launched.is_set() or not done.query():
            work.step()
            steps += 1
    thread.join()
    done.synchronize()
    wall = time.perf_counter() - t
    torch.cuda.synchronize()
    return {"wall_s": wall, "steps": steps, "prefill_launch_s": launch_s[0]}


def host_syncs(fn) -> list[str]:
    """Where `fn` makes the host wait for the GPU (torch's sync debug mode): 'message at file:line'."""
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode(0)
    return [f"{str(w.message)[:60]} at {w.filename}:{w.lineno}" for w in caught]


def measure(model, label: str, rows: int, reps: int, green: list[int]) -> list[dict]:
    work = Work(model, rows)
    for _ in range(2):
        work.prefill()
        work.step()
    pre_alone = timed(work.prefill, reps)
    step = timed(work.step, 5 * reps)
    print(f"{label:<5} rows {rows:<4} prefill alone {pre_alone * 1e3:7.1f} ms, decode step alone {step * 1e3:6.2f} ms",
          flush=True)
    syncs = host_syncs(work.prefill)
    print(f"host waits inside the prefill: {syncs}", flush=True)
    confined = {}
    if not work.engine.decoder.use_graphs:   # eager steps would share the attention plan with the prefill thread
        raise RuntimeError("decode steps are not on CUDA graphs")
    for m in (16, 32):
        dec, why = green_stream(m)
        confined[m] = timed(work.step, reps, dec) if dec is not None else why
        print(f"decode step on {m} multiprocessors: {confined[m]}", flush=True)
    variants = [("default", None, -1)] + [(f"green {n}", n, -1) for n in green]
    out = []
    for name, n_sms, prio in variants:
        row = {"model": label, "rows": rows, "prefill_on": name, "decode_priority": prio, "prefill_alone_s": pre_alone,
               "step_s": step, "host_syncs_in_prefill": syncs, "step_on_n_sms_s": confined}
        try:
            pre = torch.cuda.Stream()
            if n_sms is not None:
                pre, why = green_stream(n_sms)
                if pre is None:
                    raise RuntimeError(why)
            dec = torch.cuda.Stream(priority=prio)
            row["prefill_here_s"] = timed(work.prefill, reps, pre)
            runs = sorted((overlapped(work, pre, dec) for _ in range(reps)), key=lambda x: x["wall_s"])
            r = runs[len(runs) // 2]
            serial = pre_alone + r["steps"] * step
            row.update(r, serial_s=serial, gain=serial / r["wall_s"])
            print(f"{label:<5} rows {rows:<4} prefill on {name:<9} decode priority {prio:2d}: prefill there "
                  f"{row['prefill_here_s'] * 1e3:7.1f} ms; overlapped {r['wall_s'] * 1e3:7.1f} ms with {r['steps']:3d} "
                  f"steps, serial {serial * 1e3:7.1f} ms, gain {row['gain']:.3f} (prefill launched in "
                  f"{r['prefill_launch_s'] * 1e3:.0f} ms)", flush=True)
        except Exception as e:  # noqa: BLE001 - report the variant that cannot run, go on with the others
            row["error"] = f"{type(e).__name__}: {e}"
            print(f"{label:<5} rows {rows:<4} prefill on {name}: {row['error']}", flush=True)
        out.append(row)
    work.engine.stop()
    del work
    torch.cuda.empty_cache()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quant", nargs="+", choices=["none", "fp8"], default=["none", "fp8"])
    p.add_argument("--rows", type=int, nargs="+", default=[64, 128])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--green", type=int, nargs="*", default=[112, 120],
                   help="multiprocessors left to the prefill (a green context); the decode steps get the rest first")
    args = p.parse_args(argv)
    results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "images": IMAGES, "runs": []}
    out = result_path("bench/results/overlap_check.json")
    bf16, _ = build_model("none")
    for quant in args.quant:
        model = bf16
        if quant == "fp8":
            model = copy.deepcopy(bf16)
            quantize_linears(model, "fp8")
        for rows in args.rows:
            results["runs"] += measure(model, "bf16" if quant == "none" else quant, rows, args.reps, args.green)
            out.write_text(json.dumps(results, indent=2))
        if model is not bf16:
            del model
            torch.cuda.empty_cache()
    print("\n| model | rows | prefill on | decode priority | prefill alone ms | prefill there ms | step ms | "
          "overlapped ms | steps in it | serial ms | gain |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results["runs"]:
        if "error" in r:
            print(f"| {r['model']} | {r['rows']} | {r['prefill_on']} | {r['decode_priority']} | {r['error']} |")
            continue
        print(f"| {r['model']} | {r['rows']} | {r['prefill_on']} | {r['decode_priority']} | {r['prefill_alone_s'] * 1e3:.1f} | "
              f"{r['prefill_here_s'] * 1e3:.1f} | {r['step_s'] * 1e3:.2f} | {r['wall_s'] * 1e3:.1f} | {r['steps']} | "
              f"{r['serial_s'] * 1e3:.1f} | {r['gain']:.3f} |")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
