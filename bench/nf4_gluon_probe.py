"""The Gluon ring kernel (vlmserve.quant.gluon_nf4, weights in the kernel layout) against the Triton kernels that read
bitsandbytes' layout, per GLM-4V-9B decoder shape and row count; and, without a GPU, its sm_90 machine code.

    PYTHONPATH=inference:bench python bench/nf4_gluon_probe.py --cpu [--rows 16,64] [--double-quant both]
        no GPU needed: compiles each ring candidate (triton_nf4.RING_CONFIGS) for sm_90 with Triton's ptxas and
        prints registers, spills, shared memory and the SASS main-loop instructions per weight (nf4_sass.loop_mix)
    PYTHONPATH=inference:bench VLMSERVE_TUNING_CACHE=off python bench/nf4_gluon_probe.py [--seconds 180]
        [--shapes lm.qkv,output_layer] [--rows 1,16,64,128,256] [--double-quant {0,1,both}] [--out PATH]
        GPU: on the five decoder shapes (random weights; absmax double quantized by default, as in serving), per row
        count: bf16 cuBLAS, the tuner's choice on bitsandbytes' layout (the Triton GEMV / dot kernels, what the
        product ran before the kernel layout), the tuner's choice on the kernel layout (what it runs now), and every
        ring candidate checked against dequant + F.linear (a failure is listed, not timed) and timed - CUDA-graph
        replays, L2 flushed (gpu_timing, as the tuner times), the split-K reduce included. Markdown tables, and JSON
        to bench/results/nf4_gluon_probe.json ($OUT when set, see result_path.py) after every (shape, absmax form,
        rows). --seconds bounds the run: nothing new starts after it.
The CPU checks of the kernel's index math are inference/tests/test_nf4_gluon_layout.py.
"""
from __future__ import annotations

import argparse
import copy
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "inference"))

import torch  # noqa: E402

from vlmserve.quant import gluon_nf4 as G  # noqa: E402
from vlmserve.quant import triton_nf4 as T  # noqa: E402

QBLOCK = 64


def ring_configs(rows: list[int]) -> list[tuple[int, T.Config]]:
    """(row tile, config) of every ring candidate the tuner has for these row counts."""
    tiles = sorted({G.row_tile(m) for m in rows})
    return [(bm, c) for bm in tiles for c in T.RING_CONFIGS[bm] if c.ring]


def config_label(c: T.Config) -> str:
    if c.ring:
        return f"ring bn{c.block_n} d{c.num_stages}{' sw' if c.scale_w else ''} v{c.waves}"
    from nf4_kernel_sweep import label
    return label(c)


# ----------------------------------------------------------------------------------------------- CPU: sm_90 SASS

def prmt_asm(dtype: torch.dtype = torch.bfloat16) -> str:
    from vlmserve.quant import nf4, nf4_prmt
    code = torch.tensor(nf4.NF4_CODE_VALUES, dtype=torch.float32)
    return nf4_prmt.ptx(nf4_prmt.table_bits(code, dtype))


def compile_sm90(bn: int, depth: int, scale_w: bool, bm: int, double_quant: bool = False, is_split: bool = True,
                 has_bias: bool = False, arch: int = 90):
    """The ring kernel compiled for sm_{arch}a on this machine (no GPU): (compiled kernel, ptxas -v text, SASS).
    Pointers, M, N, K and the row stride are marked 16-divisible, as the JIT specializes them on the decoder."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource

    fn = G.nf4_ring_kernel
    sig = {"x_ptr": "*bf16", "w_ptr": "*i32", "s_ptr": "*u8" if double_quant else "*fp32", "code2_ptr": "*fp32",
           "nested_ptr": "*fp32", "offset": "fp32", "bias_ptr": "*bf16", "out_ptr": "*fp32" if is_split else "*bf16",
           "M": "i32", "N": "i32", "K": "i32", "stride_xm": "i32", "PER": "i32"}
    const = dict(BM=bm, REPS=bn // (16 * G.NUM_WARPS), DEPTH=depth, PRMT_ASM=prmt_asm(), SCALE_W=scale_w,
                 DOUBLE_QUANT=double_quant, IS_SPLIT=is_split, HAS_BIAS=has_bias)
    sig.update({k: "constexpr" for k in const})
    aligned = ("x_ptr", "w_ptr", "s_ptr", "code2_ptr", "nested_ptr", "bias_ptr", "out_ptr", "M", "N", "K",
               "stride_xm")
    attrs = {(fn.arg_names.index(a),): [["tt.divisibility", 16]] for a in aligned}
    src = GluonASTSource(fn, sig, constexprs={(fn.arg_names.index(c),): val for c, val in const.items()},
                         attrs=attrs)
    kernel = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=dict(num_warps=G.NUM_WARPS))
    info, sass = _ptxas_sass(kernel.asm["ptx"], arch)
    return kernel, info, sass


def _ptxas_sass(ptx_text: str, arch: int) -> tuple[str, str]:
    """ptxas -v's report and the SASS, with the ptxas and cuobjdump that Triton ships (as bench/nf4_sass.py)."""
    import subprocess
    import tempfile

    import triton
    bin_dir = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
    with tempfile.TemporaryDirectory() as tmp:
        ptx, cubin = os.path.join(tmp, "k.ptx"), os.path.join(tmp, "k.cubin")
        with open(ptx, "w") as f:
            f.write(ptx_text)
        info = subprocess.run([os.path.join(bin_dir, "ptxas"), f"-arch=sm_{arch}a", "-v", ptx, "-o", cubin],
                              capture_output=True, text=True, check=True).stderr
        sass = subprocess.run([os.path.join(bin_dir, "cuobjdump"), "-sass", cubin], capture_output=True, text=True,
                              check=True).stdout
    return info, sass


def absmax_label(double_quant: bool) -> str:
    return "8-bit" if double_quant else "f32"


def sass_report(bn: int, depth: int, scale_w: bool, bm: int, double_quant: bool = False) -> dict:
    from nf4_sass import loop_mix
    kernel, info, sass = compile_sm90(bn, depth, scale_w, bm, double_quant)
    mix = loop_mix(sass)
    weights = bn * QBLOCK * depth / (32 * G.NUM_WARPS)   # DEPTH quant blocks per loop body
    total = sum(mix.values())
    num = lambda pat: int(m.group(1)) if (m := re.search(pat, info)) else None  # noqa: E731
    return dict(bn=bn, depth=depth, scale_w=scale_w, rows=bm, double_quant=double_quant,
                registers=num(r"Used (\d+) registers"), spill_stores=num(r"(\d+) bytes spill stores"),
                spill_loads=num(r"(\d+) bytes spill loads"), shared=kernel.metadata.shared,
                loop_instructions=total, per_weight=total / weights, mix=dict(mix))


def run_cpu(rows: list[int], forms: list[bool]) -> list[dict]:
    seen, out = set(), []
    print("| kernel | absmax | rows | registers | spills (B) | shared (B) | loop instr | per weight | PRMT | HMMA | "
          "LDS | STS | SHFL | LDGSTS | LDG |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for bm, c in ring_configs(rows):
        for dq in forms:
            key = (c.block_n, c.num_stages, c.scale_w, bm, dq)
            if key in seen:        # waves change the grid, not the code
                continue
            seen.add(key)
            r = sass_report(c.block_n, c.num_stages, c.scale_w, bm, dq)
            out.append(r)
            mix = r["mix"]
            print(f"| bn{c.block_n} d{c.num_stages}{' sw' if c.scale_w else ''} | {absmax_label(dq)} | {bm} | "
                  f"{r['registers']} | {r['spill_stores']}/{r['spill_loads']} | {r['shared']} | "
                  f"{r['loop_instructions']} | {r['per_weight']:.2f} | "
                  + " | ".join(str(mix.get(op, 0)) for op in ("PRMT", "HMMA", "LDS", "STS", "SHFL", "LDGSTS", "LDG"))
                  + " |", flush=True)
    return out


# ----------------------------------------------------------------------------------------------- GPU

DECODE_SHAPES = (("lm.qkv", 4608, 4096), ("lm.dense", 4096, 4096), ("lm.h_to_4h", 27392, 4096),
                 ("lm.4h_to_h", 4096, 13696), ("output_layer", 151552, 4096))
TOLERANCE = 1e-2       # triton_nf4.agrees' bound for a 16-bit output: the same dequantized values, another order


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    return ((out.float() - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item()


def _tuned(x, op, label: str) -> dict:
    """The tuner's choice for op (it tunes on this first call), timed as the decode replays it."""
    from vlmserve.gpu_timing import KERNEL_TIMING, graph_time_us
    t0 = time.monotonic()
    T.nf4_matmul(x, op, None)
    tune_s = time.monotonic() - t0
    cfg = T.tuned_configs().get(T.tuning_key(x.shape[0], op, x.dtype, False))
    return dict(kind=label, config=config_label(cfg) if cfg else None, tune_s=tune_s,
                us=graph_time_us(lambda: T.nf4_matmul(x, op, None), **KERNEL_TIMING, device=x.device))


def run_gpu(rows: list[int], shapes: set[str], forms: list[bool], deadline: float, save=lambda r: None) -> list[dict]:
    import torch.nn.functional as F

    from vlmserve.gpu_timing import KERNEL_TIMING, graph_time_us
    from vlmserve.quant.linear import NF4Linear

    dev = torch.device("cuda")
    bf = torch.bfloat16
    torch.manual_seed(0)
    results = []
    print("| shape | absmax | rows | kernel | us | x bnb-layout tuned | x bf16 | check |")
    print("|---|---|---:|---|---:|---:|---:|---|")
    for name, n, k in DECODE_SHAPES:
        if shapes and name not in shapes:
            continue
        w16 = torch.randn(n, k, device=dev, dtype=bf) * 0.02
        for dq in forms:
            if time.monotonic() > deadline:
                results.append(dict(shape=name, double_quant=dq, error="out of time"))
                continue
            lin_k = NF4Linear.from_weight(w16, None, bf, double_quant=dq)
            lin_b = copy.deepcopy(lin_k)      # stays in bitsandbytes' layout: its operand is made with the switch set
            os.environ["VLMSERVE_NF4_LAYOUT"] = "bnb"
            op_b = lin_b._operand()
            os.environ["VLMSERVE_NF4_LAYOUT"] = "kernel"
            op_k = lin_k._operand()
            assert op_k.kernel_layout and not op_b.kernel_layout
            wdq = lin_b.dequantize(bf).float()
            for m in rows:
                if time.monotonic() > deadline:
                    results.append(dict(shape=name, M=m, double_quant=dq, error="out of time"))
                    continue
                x = torch.randn(m, k, device=dev, dtype=bf)
                ref = F.linear(x.float(), wdq)
                head = f"| {name} | {absmax_label(dq)} | {m} | "
                t16 = graph_time_us(lambda: F.linear(x, w16), **KERNEL_TIMING, device=dev)
                old = _tuned(x, op_b, "bnb layout, tuned")
                new = _tuned(x, op_k, "kernel layout, tuned")
                row = dict(shape=name, M=m, N=n, K=k, double_quant=dq, bf16_us=t16, bnb_tuned=old, kernel_tuned=new,
                           candidates=[])
                print(head + f"bf16 cuBLAS | {t16:.1f} | {old['us'] / t16:.2f} | 1.00 | |", flush=True)
                for r in (old, new):
                    print(head + f"{r['kind']}: {r['config']} | {r['us']:.1f} | {old['us'] / r['us']:.2f} | "
                          f"{t16 / r['us']:.2f} | tuned in {r['tune_s']:.1f} s |", flush=True)
                out = torch.empty(m, n, device=dev, dtype=bf)
                for bm, cfg in ring_configs([m]):
                    if time.monotonic() > deadline:
                        break
                    rec = dict(config=config_label(cfg))
                    try:
                        T._launch(x, op_k, None, out, cfg)
                        rec["err"] = err = rel_err(out, ref)
                        if err <= TOLERANCE:
                            rec["us"] = graph_time_us(lambda: T._launch(x, op_k, None, out, cfg), **KERNEL_TIMING,
                                                      device=dev)
                        else:
                            rec["error"] = f"differs from dequant + F.linear: rel err {err:.2e}"
                    except Exception as exc:      # listed, not timed
                        rec["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
                    row["candidates"].append(rec)
                    if "us" in rec:
                        print(head + f"{rec['config']} | {rec['us']:.1f} | {old['us'] / rec['us']:.2f} | "
                              f"{t16 / rec['us']:.2f} | ok ({rec['err']:.1e}) |", flush=True)
                    else:
                        print(head + f"{rec['config']} | - | - | - | {rec['error'][:80]} |", flush=True)
                results.append(row)
                save(results)
            lin_k = lin_b = op_k = op_b = wdq = x = ref = out = None      # the next weight's room
            torch.cuda.empty_cache()
        w16 = None
    return results


def summary(rows: list[dict]) -> None:
    """Per shape, absmax form and row count: bf16, the tuned choice on each layout."""
    print("\n| shape | absmax | rows | bf16 us | bnb layout tuned us | kernel layout tuned us | its config | "
          "kernel / bnb layout | x bf16 |")
    print("|---|---|---:|---:|---:|---:|---|---:|---:|")
    for r in rows:
        if "error" in r:
            print(f"| {r['shape']} | {absmax_label(r['double_quant'])} | {r.get('M', '-')} | {r['error']} ||||||")
            continue
        o, n = r["bnb_tuned"], r["kernel_tuned"]
        print(f"| {r['shape']} | {absmax_label(r['double_quant'])} | {r['M']} | {r['bf16_us']:.1f} | {o['us']:.1f} | "
              f"{n['us']:.1f} | {n['config']} | {o['us'] / n['us']:.2f} | {r['bf16_us'] / n['us']:.2f} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", action="store_true", help="compile for sm_90 and print the SASS figures (the default "
                                                       "without CUDA)")
    ap.add_argument("--rows", default="1,16,64,128", help="row counts (comma separated, at most 256)")
    ap.add_argument("--shapes", default="", help="only these shapes (comma separated: lm.qkv, lm.dense, "
                                                 "lm.h_to_4h, lm.4h_to_h, output_layer)")
    ap.add_argument("--double-quant", choices=("0", "1", "both"), default="1",
                    help="absmax form: 1 8-bit double quantized (serving's default), 0 float32, both each in turn")
    ap.add_argument("--seconds", type=float, default=180.0, help="GPU: start nothing new after this")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                  "nf4_gluon_probe.json"))
    args = ap.parse_args(argv)
    deadline = time.monotonic() + args.seconds
    rows = [int(r) for r in args.rows.split(",") if r]
    if not all(1 <= m <= T.MAX_FUSED_M for m in rows):
        ap.error(f"rows must be 1..{T.MAX_FUSED_M}")
    forms = {"0": [False], "1": [True], "both": [True, False]}[args.double_quant]
    if args.cpu or not torch.cuda.is_available():
        run_cpu(rows, forms)
        return 0
    import json

    import triton

    from result_path import result_path

    result = dict(machine=dict(gpu=torch.cuda.get_device_name(), torch=torch.__version__,
                               triton=triton.__version__),
                  command=" ".join(["python"] + sys.argv), tolerance=TOLERANCE)
    dest = result_path(args.out)

    def save(decode: list[dict]) -> None:
        result["decode"] = decode
        with open(dest, "w") as f:
            json.dump(result, f, indent=1)

    decode = run_gpu(rows, {s for s in args.shapes.split(",") if s}, forms, deadline, save)
    save(decode)
    summary(decode)
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
