"""NF4 nibbles to 16-bit floats with no memory lookup: the 16-entry table lives in eight 32-bit registers (the low
bytes of the 16 values in four, the high bytes in four) and PTX byte permutes (`prmt`) pick from them, four nibbles
per instruction. Nsight Compute found the table-lookup NF4 kernels bound by their one L1 load per weight
(bench/nf4_ncu.py); this decoding needs 21 integer instructions per four bytes (2.6 per weight), after a table
set-up that ptxas hoists out of the kernel's loop, and no load.

One program, written once as a list of instructions, gives both the PTX that the dot kernel inlines
(`tl.inline_asm_elementwise`, four bytes in, four high-nibble and four low-nibble values out) and a Python
interpreter of the same instructions (`emulate`), which the CPU tests check against the table for every byte
pattern: Triton's interpreter cannot run inline PTX.

How the nibbles are looked up, two bytes (four nibbles) per lookup:
  - prmt's selector is the low 16 bits of its third operand, four 4-bit fields: the input word itself, and its
    upper half shifted down, hold the nibbles of bytes 0-1 and of bytes 2-3 in the order (lo, hi, lo, hi);
  - prmt selects byte (field & 7) of the 8 bytes {b, a}; field bit 3 would replicate a sign instead, so the table
    is looked up in halves (entries 0-7 and 8-15) with the fields & 7, for the low and the high bytes of the values;
  - a byte mask from each field's bit 3 picks the half: prmt in sign mode replicates bit 7 of a chosen byte, and
    bits 3, 7, 11, 15 (of bytes 0-1) are bit 7 of bytes 0 and 1 of x << 4 and of x (of bytes 2-3: bytes 2 and 3);
  - lop3 merges the halves under the mask, and two last prmt gather low and high bytes into 16-bit pairs, the
    high nibbles' values and the low nibbles' apart.
"""
from __future__ import annotations

import torch

Instr = tuple  # (op, dst, *sources); a source is a register name or an int immediate


def _lookup(idx: str, mask_sel: int, out_hi: str, out_lo: str) -> list[Instr]:
    """idx's fields 0-3 (the nibbles lo, hi, lo, hi of two bytes, & 7) -> out_hi = the two high nibbles' values as a
    16-bit pair, out_lo = the two low nibbles'. mask_sel picks the sign bytes of (x << 4, x) for those two bytes."""
    tag = out_hi.strip("$")
    return [("prmt", f"lbl{tag}", "L0", "L1", idx), ("prmt", f"lbh{tag}", "L2", "L3", idx),
            ("prmt", f"hbl{tag}", "H0", "H1", idx), ("prmt", f"hbh{tag}", "H2", "H3", idx),
            ("prmt", f"m{tag}", "sh", "$4", mask_sel),
            ("lop3", f"lb{tag}", f"lbl{tag}", f"lbh{tag}", f"m{tag}", 0xD8),
            ("lop3", f"hb{tag}", f"hbl{tag}", f"hbh{tag}", f"m{tag}", 0xD8),
            ("prmt", out_hi, f"lb{tag}", f"hb{tag}", 0x7351), ("prmt", out_lo, f"lb{tag}", f"hb{tag}", 0x6240)]


def table_setup(table: tuple[int, ...]) -> list[Instr]:
    """The table's eight words (L0-L3: the low bytes of the 16 values, H0-H3: the high bytes) into registers, each
    as a per-thread zero | the word. With plain immediates ptxas keeps the words in uniform registers, which a
    byte permute cannot read as its data, and copies one into a regular register before every permute (1.1 extra
    instructions per weight in the dot kernel's main loop). A value that differs per thread as far as ptxas knows
    stays in regular registers, hoisted out of the loop: tid.x >> (16 | dynamic shared memory size) is 0 (tid.x <
    1024, and a shift of 16 or more), but ptxas cannot fold it, not knowing the shared memory size at compile time
    (tid.x >> 16 alone it folds)."""
    setup = [("mov", "zt", "%tid.x"), ("mov", "zs", "%dynamic_smem_size"), ("or", "zs", "zs", 16),
             ("shr", "zt", "zt", "zs")]
    for part, shift in (("L", 0), ("H", 8)):
        for q in range(4):
            word = 0
            for j in range(4):
                word |= ((table[4 * q + j] >> shift) & 0xFF) << (8 * j)
            setup.append(("or", f"{part}{q}", "zt", word))
    return setup


def program(table: tuple[int, ...]) -> list[Instr]:
    """The instructions for a 16-entry table of 16-bit patterns. Input $4: four bytes (element i in byte i);
    outputs $0, $1: the high nibbles' values (elements 0-1, 2-3), $2, $3: the low nibbles' (as bitsandbytes packs
    NF4, the high nibble is the even column)."""
    if len(table) != 16 or not all(0 <= t < 1 << 16 for t in table):
        raise ValueError("the table needs 16 16-bit patterns")
    common = [("and", "i", "$4", 0x77777777), ("shr", "ih", "i", 16), ("shl", "sh", "$4", 4)]
    return table_setup(table) + common + _lookup("i", 0xD9C8, "$0", "$2") + _lookup("ih", 0xFBEA, "$1", "$3")


def ptx(table: tuple[int, ...]) -> str:
    """The program as one PTX block for tl.inline_asm_elementwise (constraints "=r,=r,=r,=r,r", pack=4)."""
    return _render(program(table))


def _render(prog: list[Instr]) -> str:
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


def emulate(table: tuple[int, ...], x: int, tid: int = 0, smem: int = 0) -> tuple[int, int, int, int]:
    """Runs the program on one 32-bit input in thread `tid` of a launch with `smem` bytes of dynamic shared
    memory; returns ($0, $1, $2, $3)."""
    return run(program(table), {"$4": x, "%tid.x": tid, "%dynamic_smem_size": smem})


def run(prog: list[Instr], inputs: dict[str, int]) -> tuple[int, int, int, int]:
    """Interprets `prog` with its input registers set; returns ($0, $1, $2, $3)."""
    r = {k: v & 0xFFFFFFFF for k, v in inputs.items()}

    def val(a):
        return a if isinstance(a, int) else r[a]
    for op, dst, *src in prog:
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
