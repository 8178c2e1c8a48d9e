"""bench/nf4_ncu.py's reading of Nsight Compute's raw CSV, on a capture from an H100 (no GPU needed): one row per
launch of its child, a launch's x copy and split-K reduce counted with its matmul kernel."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import bench_module

CAPTURE = Path(__file__).resolve().parents[2] / "bench" / "results" / "gpu_session_2026-12-05d" / "nf4_ncu.txt"


@pytest.fixture(scope="module")
def rows():
    ncu = bench_module("nf4_ncu")
    return ncu.results_from(CAPTURE.read_text().split("\n--- stderr ---\n")[0])


def test_one_row_per_launch_in_the_childs_order(rows):
    assert [r["M"] for r in rows] == [1] * 4 + [16] * 4 + [64] * 4
    assert [r["what"] for r in rows if r["M"] == 16][-1] == "bf16 cuBLAS"
    for r in rows:
        if r["what"] == "bf16 cuBLAS":
            assert len(r["kernels"]) == 1 and "_nf4_" not in r["kernels"][0]
        else:
            assert sum("_nf4_" in k for k in r["kernels"]) == 1, r["kernels"]


def test_a_split_launch_counts_its_reduce(rows):
    split = [r for r in rows if any("reduce" in k for k in r["kernels"])]
    assert split and all(r["kernels"][-1].startswith("_splitk_reduce") for r in split)
    assert all(r["us"] > r["main_us"] for r in split)


def test_counters_are_read(rows):
    bf16 = [r for r in rows if r["what"] == "bf16 cuBLAS"]
    nf4 = [r for r in rows if r["what"] != "bf16 cuBLAS"]
    assert all(r["dram_pct"] > 70 for r in bf16)                   # cuBLAS streams the bf16 weight
    assert all(r["lsu_pct"] > 40 and r["dram_pct"] < 30 for r in nf4 if r["M"] > 1)
    assert all(r["regs"] > 0 and r["warp_instructions"] > 0 and r["top_stalls"] for r in rows)
