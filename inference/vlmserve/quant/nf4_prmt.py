"""NF4 nibbles to 16-bit floats with no memory lookup: the 16-entry table lives in eight 32-bit registers (the low
bytes of the 16 values in four, the high bytes in four) and PTX byte permutes (`prmt`) pick from them, four nibbles
per instruction. Nsight Compute found the table-lookup NF4 kernels bound by their one L1 load per weight
(bench/nf4_ncu.py); this decoding needs 21 integer instructions per four bytes (2.6 per weight) and no load.

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

import functools

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
    common = [("and", "i", "$4", 0x77777777), ("shr", "ih", "i", 16), ("shl", "sh", "$4", 4)]
    return regs + common + _lookup("i", 0xD9C8, "$0", "$2") + _lookup("ih", 0xFBEA, "$1", "$3")


def ptx(table: tuple[int, ...]) -> str:
    """The program as one PTX block for tl.inline_asm_elementwise (constraints "=r,=r,=r,=r,r", pack=4)."""
    return _render(program(table))


TABLE_NAMES = ("L0", "L1", "L2", "L3", "H0", "H1", "H2", "H3")
# With pack=4 each 32-bit input of tl.inline_asm_elementwise takes four operands (one per element): after the four
# outputs and the packed bytes ($4), table word i is operand 5 + 4 i.
OPERANDS_CONSTRAINTS = "=r,=r,=r,=r,r" + ",r" * (4 * len(TABLE_NAMES))


def table_words(table: tuple[int, ...]) -> tuple[int, ...]:
    """The eight 32-bit words that `program` moves into L0-L3, H0-H3, in that order."""
    return tuple(i[2] for i in program(table)[:len(TABLE_NAMES)])


def operand_program() -> list[Instr]:
    """The program without its table: L0-L3, H0-H3 read from the operands that OPERANDS_CONSTRAINTS declares."""
    body = program(tuple(range(16)))[len(TABLE_NAMES):]
    operand = {name: "$%d" % (5 + 4 * i) for i, name in enumerate(TABLE_NAMES)}
    return [(op, dst, *(operand.get(a, a) if isinstance(a, str) else a for a in src)) for op, dst, *src in body]


@functools.cache
def ptx_table_operands() -> str:
    """operand_program as one PTX block (the dot kernel's LUT=4 passes table_words as eight scalars loaded once,
    the same block for every code book and dtype: rendered once, not at every launch)."""
    return _render(operand_program())


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


def emulate(table: tuple[int, ...], x: int) -> tuple[int, int, int, int]:
    """Runs the program on one 32-bit input; returns ($0, $1, $2, $3)."""
    return run(program(table), {"$4": x})


def emulate_operands(table: tuple[int, ...], x: int) -> tuple[int, int, int, int]:
    """Runs operand_program with the table's words in its operands, as the LUT=4 kernel passes them."""
    words = {"$%d" % (5 + 4 * i): w for i, w in enumerate(table_words(table))}
    return run(operand_program(), {"$4": x, **words})


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
