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


def test_register_cap_fits_one_more_program_per_sm_without_spills():
    """The tuner's capped 64-row tile (triton_nf4._REGISTER_CAPS): within its cap, nothing spilled."""
    sass = bench_module("nf4_sass")
    _, free, _ = sass.compile_dot(3, 64, 128, 4, 3, 1, True, True, True)
    _, capped, _ = sass.compile_dot(3, 64, 128, 4, 3, 1, True, True, True, maxnreg=168)
    regs = [int(re.search(r"Used (\d+) registers", info).group(1)) for info in (free, capped)]
    assert regs[0] > 168 >= regs[1]         # 2 programs of 4 warps per SM without the cap, 3 with it
    assert "0 bytes spill stores" in capped
