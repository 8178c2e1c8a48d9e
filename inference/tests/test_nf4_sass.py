"""bench/nf4_sass.py compiles the NF4 dot kernel for sm_90 on a machine without a GPU (Triton's own ptxas) and
reads the instruction mix of its main loop: the register-table decoding must show its byte permutes and no
global or L1 table loads, the 16-entry table its loads."""
from __future__ import annotations

import re

import pytest

from conftest import bench_module

pytest.importorskip("triton")


def test_register_table_loop_decodes_with_permutes_and_no_table_loads():
    sass = bench_module("nf4_sass")
    kernel, info, text = sass.compile_dot(3, 16, 128, 4, 3, 1, True, True, False)
    mix = sass.loop_mix(text)
    assert mix["HGMMA"] >= 2 and mix["PRMT"] >= 64 * 14 / 8      # 14 permutes per 8 weights, 64 weights a thread
    assert mix["LDG"] <= 2        # the block's scales only: the weight bytes arrive by async copies, no lookups
    assert "spill stores" in info
    # the table's words stay in registers: no copy of one before each permute (with plain immediates ptxas made
    # 1.2 such copies per weight, 78 here)
    assert mix["IMAD"] <= 64 * 0.4


def test_memory_table_loop_loads_each_lookup():
    sass = bench_module("nf4_sass")
    _, _, text = sass.compile_dot(0, 16, 128, 4, 3, 1, True, True, False)
    mix = sass.loop_mix(text)
    assert mix["HGMMA"] >= 2 and mix["LDG"] >= 64      # one table load per weight


@pytest.mark.parametrize("key", sorted(__import__("vlmserve.quant.triton_nf4", fromlist=["x"])._REGISTER_CAPS))
def test_register_cap_fits_one_more_program_per_sm_without_spills(key):
    """Each of the tuner's register caps (triton_nf4._REGISTER_CAPS), in the serving case it was found for (8-bit
    absmax, unmasked loads): within the cap nothing spills, and one more program fits per SM than without it."""
    from vlmserve.quant import triton_nf4 as T
    sass = bench_module("nf4_sass")
    bm, bn, warps, stages, r, w_is_a, scale_w = key
    cap = T._REGISTER_CAPS[key]
    regs = []
    for maxnreg in (0, cap):
        _, info, _ = sass.compile_dot(3, bm, bn, warps, stages, r, w_is_a, True, scale_w, maxnreg=maxnreg, even=True,
                                      double_quant=True)
        regs.append(int(re.search(r"Used (\d+) registers", info).group(1)))
    assert "0 bytes spill stores" in info

    def programs(n):         # per SM: 64K registers, allocated per warp in units of 8 per thread
        return 65536 // (-(-n // 8) * 8 * 32 * warps)
    assert regs[1] <= cap and programs(regs[1]) > programs(regs[0]), regs
