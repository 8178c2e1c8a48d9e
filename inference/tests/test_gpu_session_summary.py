"""bench/gpu_session_summary.py on the H200 result files the repo holds (the last GPU session's): it must read
the figures they contain, judge them against the issues' targets, and report what they lack as not measured."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import BENCH, bench_module

RESULTS = BENCH / "results"


@pytest.fixture(scope="module")
def summary_mod():
    return bench_module("gpu_session_summary")


@pytest.fixture()
def last_session(tmp_path: Path) -> Path:
    for src, dst in (("nf4_memory_speed_h200.json", "nf4_memory_speed.json"),
                     ("serve_nf4_vs_bf16_h200_nf4.json", "serve_throughput_nf4.json"),
                     ("serve_throughput_compare.json", "serve_throughput_compare.json")):
        shutil.copy(RESULTS / src, tmp_path / dst)
    return tmp_path


def by_figure(rows):
    return {r["figure"]: r for r in rows}


def test_reads_the_last_sessions_figures_and_judges_them(summary_mod, last_session):
    rows = by_figure(summary_mod.summarize(last_session))
    step = rows["bf16 decode step at batch 1 (CUDA graph)"]
    assert step["value"] == pytest.approx(1000 / 79.72696594409103)
    assert rows["bf16 best images/s (c=128)"]["value"] == pytest.approx(4.1852175141449175)
    assert rows["bf16 best images/s (c=128)"]["met"] is False                  # target 4.9
    assert rows["fp8 best images/s (c=128)"]["met"] is False                   # target 6.5
    assert rows["bf16 TTFT p50 at c=64, all requests (first wave included)"]["value"] == pytest.approx(4.819100779999999)
    after = rows["bf16 TTFT p50 at c=64, after the first wave"]
    assert after["value"] == pytest.approx(1.5465544609999995) and after["met"] is True   # target 2 s
    ratio = rows["NF4 / bf16 serving images/s, c=64"]
    assert ratio["value"] == pytest.approx(2.3049688652745224 / 3.8128571223954912) and ratio["met"] is False
    # that session's nf4 mode was cut off before it wrote batches, and it had no 16 GiB run: not measured
    assert rows["NF4 / bf16 decode per row, batch 16"]["value"] is None
    assert rows["NF4 / bf16 decode per row, batch 16"]["met"] is None
    assert rows["NF4 16 GiB budget: KV slots held"]["value"] is None
    text = summary_mod.table(list(rows.values()))
    assert "| bf16 best images/s (c=128) | 4.185 img/s | >= 4.9 | NO |" in text
    assert "not measured" in text


def test_missing_or_broken_files_are_not_measured(summary_mod, tmp_path):
    (tmp_path / "serve_throughput_compare.json").write_text('{"runs": [{"model": "bf16", "conc')   # cut mid-write
    (tmp_path / "nf4_memory_speed.json").write_text('{"results": {"nf4": {"batches": "not a dict"}}}')
    rows = summary_mod.summarize(tmp_path)
    assert rows and all(r["value"] is None and r["met"] is None for r in rows)


def test_main_writes_the_json_and_refuses_a_missing_dir(summary_mod, last_session, tmp_path, capsys):
    assert summary_mod.main([str(last_session)]) == 0
    assert (last_session / "gpu_session_summary.json").is_file()
    assert "| figure |" in capsys.readouterr().out
    assert summary_mod.main([str(tmp_path / "nope")]) == 2


def test_round_size_runs_are_judged_each(summary_mod, tmp_path):
    runs = [{"round_images": 2, "images_per_s": 3.9, "ttft_s_median_after_first_wave": 0.6},
            {"round_images": 8, "images_per_s": 4.0, "ttft_s_median_after_first_wave": 3.1}]
    (tmp_path / "serve_ttft_rounds.json").write_text(json.dumps({"runs": runs}))
    rows = by_figure(summary_mod.summarize(tmp_path))
    two = rows["bf16 c=64, 2 images per round: TTFT p50 after the first wave"]
    assert two["value"] == 0.6 and two["met"] is True
    assert rows["bf16 c=64, 8 images per round: TTFT p50 after the first wave"]["met"] is False
    assert rows["bf16 c=64, 2 images per round: images/s / the fastest round size"]["value"] == pytest.approx(3.9 / 4.0)


def test_the_one_kernel_decode_attention_is_compared_with_the_torch_path(summary_mod, last_session):
    plain = json.loads((last_session / "nf4_memory_speed.json").read_text())
    for mode in ("nf4", "bf16"):
        for row in (plain["results"].get(mode) or {}).get("batches", {}).values():
            if row.get("decode_tps_graph"):
                row["decode_tps_graph"] /= 1.25
    (last_session / "nf4_memory_speed_torch_decode.json").write_text(json.dumps(plain))
    rows = by_figure(summary_mod.summarize(last_session))
    assert rows["bf16 decode per row, batch 1, one-kernel decode attention / torch's"]["value"] == pytest.approx(1.25)
    assert "NF4 / bf16 decode per row, batch 16, both with torch decode attention" in rows

