"""NF4 nibbles to 16-bit floats with no memory lookup: the 16-entry table lives in eight 32-bit registers (the low
bytes of the 16 values in four, the high bytes in four) and PTX byte permutes (`prmt`) pick from them, four nibbles
per instruction. Nsight Compute found the table-lookup NF4 kernels bound by their one L1 load per weight
(bench/nf4_ncu.py); this decoding needs about 3.6 integer instructions per weight and no load.

One program, written once as a list of instructions, gives both the PTX that the dot kernel inlines
(`tl.inline_asm_elementwise`, four bytes in, four high-nibble and four low-nibble values out) and a Python
interpreter of the same instructions (`emulate`), which the CPU tests check against the table for every byte
pattern: Triton's interpreter cannot run inline PTX.

How four nibbles are looked up (s holds them in its four low nibble positions):
  - prmt selects byte (selector & 7) of the 8 bytes {b, a}; selector bit 3 would replicate a sign instead, so the
    table is looked up in halves (entries 0-7 and 8-15) with s & 0x7777, for the low and the high bytes;
  - a byte mask from each nibble's bit 3 picks the half: prmt in sign mode replicates bit 7 of a chosen byte, and
    the four bits 3, 7, 11, 15 of s are bit 7 of the bytes 0 and 1 of s << 4 and of s;
  - lop3 merges the halves under the mask, and two last prmt interleave low and high bytes into 16-bit pairs.
"""
from __future__ import annotations

import torch

Instr = tuple  # (op, dst, *sources); a source is a register name or an int immediate

_SPREAD = 0x0F0F0F0F


def _lookup(out_a: str, out_b: str) -> list[Instr]:
    """s's nibbles (n0, n2, n1, n3) -> out_a = values of n0, n1 as a 16-bit pair, out_b = those of n2, n3."""
    return [("and", "s7", "s", 0x7777),
            ("prmt", "lbl", "L0", "L1", "s7"), ("prmt", "lbh", "L2", "L3", "s7"),
            ("prmt", "hbl", "H0", "H1", "s7"), ("prmt", "hbh", "H2", "H3", "s7"),
            ("shl", "sh", "s", 4), ("prmt", "m", "sh", "s", 0xD9C8),
            ("lop3", "lb", "lbl", "lbh", "m", 0xD8), ("lop3", "hb", "hbl", "hbh", "m", 0xD8),
            ("prmt", out_a, "lb", "hb", 0x6240), ("prmt", out_b, "lb", "hb", 0x7351)]


def program(table: tuple[int, ...]) -> list[Instr]:
    """The instructions for a 16-entry table of 16-bit patterns. Input $4: four bytes (element i in byte i);
    outputs $0, $1: the high nibbles' values (elements 0-1, 2-3), $2, $3: the low nibbles' (as bitsandbytes packs
    NF4, the high nibble is the even column)."""
    if len(table) != 16 or not all(0 <= t < 1 << 16 for t in table):
        raise ValueError("the table needs 16 16-bit patterns")
    regs = []
    for part, shift in (("L", 0), ("H", 8)):
        for q in range(4):
            word = 0
            for j in range(4):
                word |= ((table[4 * q + j] >> shift) & 0xFF) << (8 * j)
            regs.append(("mov", f"{part}{q}", word))
    # s = v | v >> 12 puts the bytes' nibbles (n0, n1, n2, n3) into s's nibbles 0-3 as (n0, n2, n1, n3)
    lo = [("and", "v", "$4", _SPREAD), ("shr", "s", "v", 12), ("or", "s", "s", "v")]
    hi = [("shr", "v", "$4", 4), ("and", "v", "v", _SPREAD), ("shr", "s", "v", 12), ("or", "s", "s", "v")]
    return regs + lo + _lookup("$2", "$3") + hi + _lookup("$0", "$1")


def ptx(table: tuple[int, ...]) -> str:
    """The program as one PTX block for tl.inline_asm_elementwise (constraints "=r,=r,=r,=r,r", pack=4)."""
    prog = program(table)
    names = sorted({i[1] for i in prog if not i[1].startswith("$")})
    lines = ["{", f".reg .b32 {', '.join(names)};"]
    for op, dst, *src in prog:
        args = ", ".join(f"0x{a:X}" if isinstance(a, int) else a for a in src)
        lines.append(f"{op}.b32 {dst}, {args};")
    lines.append("}")
    return "\n".join(lines)


def _prmt(a: int, b: int, c: int) -> int:
    pool = (b << 32 | a).to_bytes(8, "little")
    out = 0
    for k in range(4):
        sel = (c >> (4 * k)) & 0xF
        byte = pool[sel & 7]
        if sel & 8:
            byte = 0xFF if byte & 0x80 else 0
        out |= byte << (8 * k)
    return out


def _lop3(a: int, b: int, c: int, lut: int) -> int:
    out = 0
    for bit in range(32):
        idx = ((a >> bit) & 1) << 2 | ((b >> bit) & 1) << 1 | ((c >> bit) & 1)
        out |= ((lut >> idx) & 1) << bit
    return out


def emulate(table: tuple[int, ...], x: int) -> tuple[int, int, int, int]:
    """Runs the program on one 32-bit input; returns ($0, $1, $2, $3)."""
    r = {"$4": x & 0xFFFFFFFF}

    def val(a):
        return a if isinstance(a, int) else r[a]
    for op, dst, *src in program(table):
        v = [val(a) for a in src]
        if op == "mov":
            res = v[0]
        elif op == "and":
            res = v[0] & v[1]
        elif op == "or":
            res = v[0] | v[1]
        elif op == "shr":
            res = v[0] >> v[1]
        elif op == "shl":
            res = v[0] << v[1]
        elif op == "prmt":
            res = _prmt(*v)
        elif op == "lop3":
            res = _lop3(*v)
        else:
            raise ValueError(op)
        r[dst] = res & 0xFFFFFFFF
    return r["$0"], r["$1"], r["$2"], r["$3"]


def table_bits(code: torch.Tensor, dtype: torch.dtype) -> tuple[int, ...]:
    """The 16 code values rounded to `dtype` (a 16-bit float type), as 16-bit patterns."""
    if dtype not in (torch.bfloat16, torch.float16):
        raise ValueError(f"the register table holds 16-bit values, not {dtype}")
    bits = code.detach().to("cpu", torch.float32).to(dtype).view(torch.int16).to(torch.int32) & 0xFFFF
    return tuple(int(b) for b in bits)
