"""bench/nf4_kernel_sweep.py --suggest, on the H100 grid of session 9 (no GPU needed): each label read back as the
tuner's constructor call, and the tiles within 3% of each shape's winner, which is how triton_nf4._tc_configs is
chosen."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import bench_module

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
GRID = RESULTS / "gpu_session_2026-12-05e" / "call3" / "nf4_kernel_grid.json"


def test_labels_read_back_as_constructor_calls():
    sweep = bench_module("nf4_kernel_sweep")
    assert sweep.config_of("dot/lut3/xs/sw 16x128 r2 w4 s3 v4 B") == (
        "_dot(bm, 128, 4, 3, 2, 3, waves=4, w_is_a=False, x_split=True, scale_w=True)")
    assert sweep.config_of("dot/lut3/xs/sw/mr168 64x128 r1 w4 s3 v4 A") == (
        "_dot(bm, 128, 4, 3, 1, 3, waves=4, x_split=True, scale_w=True, maxnreg=168)")
    assert sweep.config_of("tc/xs 64x256 r2 w8 s1 v2 A") == "_tc(bm, 256, 8, 1, 2, waves=2, x_split=True)"
    assert sweep.config_of("dequant+cuBLAS 4 MiB") is None


def test_every_shapes_winner_is_suggested():
    sweep = bench_module("nf4_kernel_sweep")
    grid = json.loads(GRID.read_text())
    picks = sweep.suggest(grid, 0.03)
    for row in grid["decode"]:
        assert sweep.config_of(row["best"]["config"]) in picks
    assert len(picks) < sum(len(row["candidates"]) for row in grid["decode"]) / 10   # a short list


def test_each_suggestion_builds_a_distinct_config():
    sweep = bench_module("nf4_kernel_sweep")
    T = pytest.importorskip("vlmserve.quant.triton_nf4")
    picks = sweep.suggest(json.loads(GRID.read_text()), 0.03)
    made = {eval(call, {"_dot": T._dot, "_tc": T._tc, "bm": 16}) for call in picks}   # noqa: S307 (our own text)
    assert len(made) == len(picks) and all(isinstance(c, T.Config) for c in made)
