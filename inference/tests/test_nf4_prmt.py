"""The register-table NF4 decoding (vlmserve.quant.nf4_prmt): its instructions, run by the Python interpreter of the
same program, give the table's value for both nibbles of every byte in every position of the 32-bit input. The
PTX itself runs only on a GPU (tests/test_nf4_gpu.py and bench/nf4_kernel_sweep.py --grid)."""
from __future__ import annotations

import random

import pytest
import torch

from vlmserve.quant import nf4_prmt
from vlmserve.quant.nf4 import NF4_CODE_VALUES


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("tid,smem", [(0, 0), (1023, 227 * 1024), (77, 25088), (512, 1 << 31)])
def test_every_byte_in_every_position_decodes_to_the_table(dtype, tid, smem):
    """In any thread of a block (tid.x < 1024) and with any dynamic shared memory size, the table set-up's
    per-thread zero is 0."""
    table = nf4_prmt.table_bits(torch.tensor(NF4_CODE_VALUES), dtype)
    rng = random.Random(0)
    words = [rng.getrandbits(32) for _ in range(512)]
    for b in range(256):       # each byte value in each of the four positions, the others random
        for pos in range(4):
            words.append((rng.getrandbits(32) & ~(0xFF << 8 * pos)) | b << 8 * pos)
    for x in words:
        o0, o1, o2, o3 = nf4_prmt.emulate(table, x, tid, smem)
        got_hi = [o0 & 0xFFFF, o0 >> 16, o1 & 0xFFFF, o1 >> 16]
        got_lo = [o2 & 0xFFFF, o2 >> 16, o3 & 0xFFFF, o3 >> 16]
        data = x.to_bytes(4, "little")
        assert got_hi == [table[d >> 4] for d in data], hex(x)
        assert got_lo == [table[d & 15] for d in data], hex(x)


def test_any_table_not_only_nf4():
    rng = random.Random(1)
    table = tuple(rng.getrandbits(16) for _ in range(16))
    for x in (rng.getrandbits(32) for _ in range(2000)):
        o = nf4_prmt.emulate(table, x, tid=x & 1023, smem=x >> 12)
        vals = [o[0] & 0xFFFF, o[0] >> 16, o[1] & 0xFFFF, o[1] >> 16, o[2] & 0xFFFF, o[2] >> 16, o[3] & 0xFFFF,
                o[3] >> 16]
        data = x.to_bytes(4, "little")
        assert vals == [table[d >> 4] for d in data] + [table[d & 15] for d in data]


def test_ptx_is_the_program():
    table = nf4_prmt.table_bits(torch.tensor(NF4_CODE_VALUES), torch.bfloat16)
    text = nf4_prmt.ptx(table)
    body = [line for line in text.splitlines() if line.endswith(";") and not line.startswith(".reg")]
    assert len(body) == len(nf4_prmt.program(table))
    assert sum(line.startswith("prmt.b32") for line in body) == 14      # 7 per four nibbles
    setup = nf4_prmt.table_setup(table)
    assert nf4_prmt.program(table)[:len(setup)] == setup and len(setup) == 4 + 8   # hoisted out of the loop by ptxas
    assert len(nf4_prmt.program(table)) - len(setup) == 21   # per 8 weights: ~2.6 each
    assert "%tid.x" in text and "%dynamic_smem_size" in text
    assert "$4" in text and all(f"${i}," in text for i in range(4))
    with pytest.raises(ValueError):
        nf4_prmt.table_bits(torch.tensor(NF4_CODE_VALUES), torch.float32)
