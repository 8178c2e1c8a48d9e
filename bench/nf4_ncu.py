"""Why an NF4 matmul is as fast as it is: Nsight Compute's counters for the tuner's pick and the runners-up on one
decoder shape (GPU with ncu), next to bf16 cuBLAS on the same shape.

For each row count it tunes the NF4 kernels as the engine does (CUDA-graph replays, L2 flushed), then launches the
tuner's three fastest fused candidates and F.linear once each inside an NVTX range that ncu profiles (nothing else is).
Per kernel it keeps duration, DRAM, SM and L1 load-pipe throughput, instructions, registers per thread,
occupancy, local-memory traffic and the top warp stall reasons. Prints a table and writes bench/results/nf4_ncu.json (or --out), plus
ncu's raw text beside it (.txt).

    python bench/nf4_ncu.py [--shape lm.h_to_4h] [--rows 1,16,64]
    python bench/nf4_ncu.py --from-txt bench/results/.../nf4_ncu.txt --out ...   # re-read a capture (no GPU)
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "inference"))
sys.path.insert(0, HERE)
# The Triton kernels swept here read bitsandbytes' layout: keep the layers in it (the Gluon ring kernel on the kernel
# layout has its own bench, nf4_gluon_probe.py).
os.environ.setdefault("VLMSERVE_NF4_LAYOUT", "bnb")

from nf4_kernel_sweep import DECODE_SHAPES, label  # noqa: E402

SHAPES = {name: (n, k, bias) for name, n, k, bias in DECODE_SHAPES if name.startswith("lm.")}
RANGE = "nf4ncu"
SECTIONS = ("SpeedOfLight", "Occupancy", "LaunchStats", "WarpStateStats", "MemoryWorkloadAnalysis")
# columns of ncu's raw page (those sections' metrics) kept per kernel
DURATION = "gpu__time_duration.sum"
# (this ncu's raw page has no dram__throughput: DRAM busy is dram__cycles_active; lsu_pct is the L1 pipe the NF4
# table lookups load through)
COLUMNS = dict(dram_pct="dram__cycles_active.avg.pct_of_peak_sustained_elapsed",
               sm_pct="sm__throughput.avg.pct_of_peak_sustained_elapsed",
               lsu_pct="l1tex__data_pipe_lsu_wavefronts.avg.pct_of_peak_sustained_elapsed",
               warp_instructions="inst_executed", regs="launch__registers_per_thread",
               grid="launch__grid_size", occupancy_pct="sm__warps_active.avg.pct_of_peak_sustained_active")


def child(shape: str, rows: list[int]) -> None:
    """Runs under ncu: tunes, then launches the kernels to profile inside the NVTX range, printing their order."""
    import torch
    import torch.nn.functional as F

    from vlmserve.quant import triton_nf4 as T
    from vlmserve.quant.linear import NF4Linear

    n, k, has_bias = SHAPES[shape]
    dev = torch.device("cuda")
    bf = torch.bfloat16
    w16 = torch.randn(n, k, device=dev, dtype=bf) * 0.02
    b16 = torch.randn(n, device=dev, dtype=bf) * 0.1 if has_bias else None
    op = NF4Linear.from_weight(w16, b16, compute_dtype=bf)._operand()
    order = []
    for m in rows:
        x = torch.randn(m, k, device=dev, dtype=bf)
        T.nf4_matmul(x, op, b16)                                     # tunes this row bucket
        key = T.tuning_key(m, op, bf, b16 is not None)
        timed = sorted(((t, c) for c, t, err in T.tuning_timings().get(key, []) if t is not None), key=lambda tc: tc[0])
        # fused kernels only (a dequant + cuBLAS candidate is many launches: not one row of counters)
        timed = [(t, c) for t, c in timed if not c.dequant]
        picks = [c for _, c in timed[:3]] or [T.GEMV_CONFIGS[0] if m == 1 else T.TC_CONFIGS[16][1]]
        out = torch.empty(m, n, device=dev, dtype=bf)
        for cfg in picks:
            T._launch(x, op, b16, out, cfg)                          # compiled outside the range
        F.linear(x, w16, b16)
        torch.cuda.synchronize()
        torch.cuda.nvtx.range_push(RANGE)
        for i, cfg in enumerate(picks):
            T._launch(x, op, b16, out, cfg)
            order.append(dict(M=m, what=f"fused #{i + 1} " + label(cfg),
                              tuned_us=timed[i][0] if timed else None))
        F.linear(x, w16, b16)
        order.append(dict(M=m, what="bf16 cuBLAS", tuned_us=None))
        torch.cuda.nvtx.range_pop()
        torch.cuda.synchronize()
    print("ORDER " + json.dumps(order), flush=True)


def is_main(name: str) -> bool:
    """The launch's matmul kernel: an NF4 kernel or cuBLAS's, not the x copy before it or a split-K reduce after."""
    low = name.lower()
    return ("_nf4_" in name and "dequant" not in name) or not ("elementwise" in low or "copy" in low
                                                               or "reduce" in low or "dequant" in low)


def launches(table: list[dict]) -> list[list[dict]]:
    """ncu's kernel rows grouped per launch of the child: copies before a matmul kernel belong to it, reduces
    after it too."""
    groups, pending = [], []
    for r in table:
        name = r.get("Kernel Name", "")
        if "reduce" in name.lower() and groups:
            groups[-1].append(r)
        elif is_main(name):
            groups.append(pending + [r])
            pending = []
        else:
            pending.append(r)
    return groups


def results_from(stdout: str) -> list[dict]:
    """One row per launch of the child (its ORDER line) from ncu's raw CSV page in `stdout`."""
    order = next((json.loads(line[6:]) for line in stdout.splitlines() if line.startswith("ORDER ")), None)
    if order is None:
        raise ValueError("no ORDER line: the child did not finish")
    # ncu's CSV rows follow the "==PROF==" lines; the first two rows are the header and the units
    csv_text = "\n".join(line for line in stdout.splitlines() if line.startswith('"'))
    table = [r for r in csv.DictReader(io.StringIO(csv_text)) if r.get("ID", "").isdigit()]
    groups = launches(table)
    if len(groups) != len(order):
        raise ValueError(f"{len(groups)} launches profiled, {len(order)} expected")
    results = []
    for spec, group in zip(order, groups):
        main_row = next(r for r in group if is_main(r.get("Kernel Name", "")))

        def num(name, r=main_row):
            try:
                return float(str(r.get(name, "")).replace(",", ""))
            except ValueError:
                return None
        # WarpStateStats' per-reason stall columns (cycles per issued instruction); names vary across ncu versions
        stalls = {c.split("issue_stalled_")[1].split("_per_issue")[0].split(".")[0]: num(c)
                  for c in main_row if "issue_stalled_" in c and c.endswith(".ratio") and "not_issued" not in c}
        top = sorted(((v, s) for s, v in stalls.items() if v), reverse=True)[:4]
        total_ns = sum(num(DURATION, r) or 0 for r in group)
        results.append(dict(spec, kernels=[r.get("Kernel Name", "")[:60] for r in group], us=total_ns / 1e3,
                            main_us=(num(DURATION) or 0) / 1e3, **{k: num(c) for k, c in COLUMNS.items()},
                            local_memory={c: num(c) for c in main_row if "local" in c and num(c)},
                            top_stalls=[(s, v) for v, s in top]))
    return results


def print_table(shape: str, results: list[dict]) -> None:
    n, k, _ = SHAPES[shape]
    print(f"{shape} [{n} x {k}]: ncu counters (one launch each, clocks not locked); us counts a launch's copies and "
          f"split-K reduce, the other columns are its matmul kernel's")
    print(f"{'M':>3} {'what':52s} {'us':>7} {'DRAM%':>6} {'SM%':>5} {'LSU%':>5} {'regs':>4} {'occ%':>5}  top stalls")
    for r in results:
        st = ", ".join(f"{s} {v:.1f}" for s, v in r["top_stalls"])
        print(f"{r['M']:>3} {r['what'][:52]:52s} {r['us']:7.1f} {r['dram_pct'] or 0:6.1f} {r['sm_pct'] or 0:5.1f} "
              f"{r['lsu_pct'] or 0:5.1f} {r['regs'] or 0:4.0f} {r['occupancy_pct'] or 0:5.1f}  {st}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="lm.h_to_4h", choices=sorted(SHAPES))
    ap.add_argument("--rows", default="1,16,64")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "nf4_ncu.json"))
    ap.add_argument("--from-txt", default=None, help="re-read a saved ncu output (.txt) instead of profiling")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    rows = [int(r) for r in args.rows.split(",")]
    if args.child:
        child(args.shape, rows)
        return
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    if args.from_txt:
        with open(args.from_txt) as f:
            results = results_from(f.read().split("\n--- stderr ---\n")[0])
    else:
        results = profile(args)
    print_table(args.shape, results)
    with open(args.out, "w") as f:
        json.dump(dict(command=" ".join(sys.argv), shape=args.shape, rows=rows, results=results), f, indent=1)


def profile(args) -> list[dict]:
    """Runs this script's child under ncu; returns its rows (ncu's raw output is kept beside args.out)."""
    ncu = shutil.which("ncu")
    if ncu is None:
        sys.exit("ncu (Nsight Compute) is not on the PATH")
    cmd = [ncu, "--nvtx", "--nvtx-include", f"{RANGE}/", "--clock-control", "none", "--csv", "--page", "raw",
           "--print-units", "base",
           *(a for sec in SECTIONS for a in ("--section", sec)), sys.executable, os.path.abspath(__file__), "--child",
           "--shape", args.shape, "--rows", args.rows]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, VLMSERVE_TUNING_CACHE="off"))
    raw = proc.stdout + "\n--- stderr ---\n" + proc.stderr
    with open(os.path.splitext(args.out)[0] + ".txt", "w") as f:
        f.write(raw)
    try:
        results = results_from(proc.stdout)
    except ValueError as exc:
        sys.exit(f"ncu failed (rc {proc.returncode}, {exc}); its output is in "
                 f"{os.path.splitext(args.out)[0]}.txt\n" + raw[-3000:])
    if proc.returncode != 0:
        sys.exit(f"ncu exited with {proc.returncode}; its output is in {os.path.splitext(args.out)[0]}.txt")
    return results


if __name__ == "__main__":
    main()
