"""The NF4 dot kernel's machine code without a GPU: compiles one tile configuration for an sm_90 target with the
ptxas that Triton ships, and prints its registers, spills and shared memory, and the instruction mix of its main
loop (SASS between the loop's start and its backward branch) per weight. Used to compare decodings and tiles on
the CPU machine before spending GPU time on them; it says nothing about time.

    PYTHONPATH=inference python3 bench/nf4_sass.py --tile 16x128 --r 1 --warps 4 --stages 3 --lut 3 [--scale-w] [--b]

Needs Triton (not a CPU test requirement); writes nothing.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter

import torch


def compile_dot(lut: int, bm: int, bn: int, warps: int, stages: int, r: int, w_is_a: bool, x_split: bool,
                scale_w: bool, maxnreg: int = 0, arch: int = 90, even: bool = False, double_quant: bool = False):
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from vlmserve.quant import nf4, nf4_prmt
    from vlmserve.quant import triton_nf4 as T

    fn = T._nf4_dot_kernel
    code = torch.tensor(nf4.NF4_CODE_VALUES, dtype=torch.float32)
    sig = {"x_ptr": "*bf16", "packed_ptr": "*u8", "absmax_ptr": "*fp32", "qabs_ptr": "*u8", "code2_ptr": "*fp32",
           "nested_ptr": "*fp32", "offset": "fp32", "lut_ptr": "*i32" if lut == 1 else "*bf16",
           "bias_ptr": "*bf16",
           "out_ptr": "*fp32", "M": "i32", "N": "i32", "K": "i32",
           "stride_xm": "i32", "SPLIT_K": "i32"}
    asm = nf4_prmt.ptx(nf4_prmt.table_bits(code, torch.bfloat16)) if lut == 3 else ""
    const = dict(BLOCK_M=bm, BLOCK_N=bn, R=r, IS_SPLIT=True, W_IS_A=w_is_a, LUT=lut, X_SPLIT=x_split,
                 DOUBLE_QUANT=double_quant, HAS_BIAS=False, IEEE=False, SCALE_W=scale_w, PRMT_ASM=asm, EVEN=even)
    sig.update({k: "constexpr" for k in const})
    # what the JIT assumes at a real launch on GLM-4V-9B's shapes: 16-byte aligned pointers, N, K and the row
    # stride multiples of 16
    aligned = ("x_ptr", "packed_ptr", "absmax_ptr", "qabs_ptr", "code2_ptr", "nested_ptr", "lut_ptr", "bias_ptr",
               "out_ptr", "N", "K", "stride_xm")
    attrs = {(fn.arg_names.index(n),): [["tt.divisibility", 16]] for n in aligned}
    src = ASTSource(fn, sig, constexprs={(fn.arg_names.index(k),): v for k, v in const.items()}, attrs=attrs)
    kernel = triton.compile(src, target=GPUTarget("cuda", arch, 32),
                            options=dict(num_warps=warps, num_stages=stages,
                                         **({"maxnreg": maxnreg} if maxnreg else {})))
    bin_dir = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
    with tempfile.TemporaryDirectory() as tmp:
        ptx, cubin = os.path.join(tmp, "k.ptx"), os.path.join(tmp, "k.cubin")
        with open(ptx, "w") as f:
            f.write(kernel.asm["ptx"])
        info = subprocess.run([os.path.join(bin_dir, "ptxas"), f"-arch=sm_{arch}a", "-v", ptx, "-o", cubin],
                              capture_output=True, text=True, check=True).stderr
        sass = subprocess.run([os.path.join(bin_dir, "cuobjdump"), "-sass", cubin], capture_output=True, text=True,
                              check=True).stdout
    return kernel, info, sass


def loop_mix(sass: str) -> Counter:
    """Opcode counts between the first backward branch's target and the branch (the main loop)."""
    ins = [(int(a, 16), t.strip()) for a, t in re.findall(r"/\*([0-9a-f]{4,})\*/\s+([^;]*);", sass)]
    for addr, text in ins:
        target = re.search(r"\bBRA\b.*?0x([0-9a-f]+)", text)
        if target and int(target.group(1), 16) < addr:
            start = int(target.group(1), 16)
            body = [t for a, t in ins if start <= a <= addr]
            return Counter(re.sub(r"^@!?U?P\w+\s+", "", t).split()[0].split(".")[0] for t in body)
    return Counter()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tile", default="16x128", help="BLOCK_M x BLOCK_N")
    p.add_argument("--r", type=int, default=1)
    p.add_argument("--warps", type=int, default=4)
    p.add_argument("--stages", type=int, default=3)
    p.add_argument("--lut", type=int, default=3, choices=[0, 1, 3])
    p.add_argument("--scale-w", action="store_true")
    p.add_argument("--b", action="store_true", help="the weight as the second operand (w_is_a=False)")
    p.add_argument("--maxnreg", type=int, default=0, help="registers per thread at most (0: ptxas's choice)")
    p.add_argument("--x-permuted", action="store_true", help="x permuted per quant block instead of x_split")
    p.add_argument("--even", action="store_true", help="N and K tile evenly: the weight and scale loads unmasked")
    p.add_argument("--double-quant", action="store_true", help="8-bit absmax (the 16-bit serving default)")
    args = p.parse_args(argv)
    bm, bn = (int(v) for v in args.tile.split("x"))
    kernel, info, sass = compile_dot(args.lut, bm, bn, args.warps, args.stages, args.r, not args.b,
                                     not args.x_permuted, args.scale_w, args.maxnreg, even=args.even,
                                     double_quant=args.double_quant)
    used = " ".join(line.split(":", 1)[-1].strip() for line in info.splitlines() if "Used" in line or "spill" in line)
    mix = loop_mix(sass)
    weights = bn * 64 * args.r / (32 * args.warps)     # weights decoded per thread per loop iteration
    print(f"dot kernel lut {args.lut} {bm}x{bn} r{args.r} w{args.warps} s{args.stages} "
          f"{'B' if args.b else 'A'}{' scale_w' if args.scale_w else ''}"
          f"{f' maxnreg {args.maxnreg}' if args.maxnreg else ''}{' even' if args.even else ''}"
          f"{' double_quant' if args.double_quant else ''}: shared {kernel.metadata.shared} B; {used}")
    total = sum(mix.values())
    print(f"main loop: {total} instructions, {weights:.0f} weights per thread, {total / weights:.2f} per weight")
    print("| opcode | count | per weight |\n|---|---:|---:|")
    for op, n in mix.most_common(16):
        print(f"| {op} | {n} | {n / weights:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
