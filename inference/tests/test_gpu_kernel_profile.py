"""bench/gpu_kernel_profile.py's accounting, on CPU: kernels sorted into categories by name, the GPU's busy time as
the union of kernel spans (kernels of several streams overlap), idle as the rest of the section's wall time. The
profiling itself needs the GPU; its summary must be right before a device session is spent on it."""
from __future__ import annotations

import pytest

from conftest import bench_module


@pytest.fixture(scope="module")
def prof():
    return bench_module("gpu_kernel_profile")


@pytest.mark.parametrize("name,want", [
    ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x256x64_warpgroupsize2x1x1_execute_segment_k_off", "gemm"),
    ("nvjet_tst_128x256_64x4_1x2_h_bz_coopA_TNT", "gemm"),
    ("nvjet_sm90_tst_96x128_64x7_2x1_v_bz_splitK_TNN", "gemm"),  # cuBLAS split-K, not ours
    ("cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_3_64x64x128_4x1x1_kernel0_0", "attention"),
    ("void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128, 64, 4>, true>", "attention"),
    ("_nf4_dot_kernel", "nf4 / fp8 kernels"),
    ("_splitk_reduce_kernel", "nf4 / fp8 kernels"),
    ("_add_rms_norm", "fused norm / activation (triton)"),
    ("_add_layer_norm", "fused norm / activation (triton)"),
    ("_wide_rows", "fused norm / activation (triton)"),
    ("Memcpy HtoD (Pinned -> Device)", "copies / fills"),
    ("void at::native::(anonymous namespace)::CatArrayBatchedCopy<at::native::(anonymous namespace)::OpaqueType<2u>>",
     "copies / fills"),
    ("void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<c10::BFloat16>>", "other element-wise / reductions"),
    ("void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, float, float, float>", "other element-wise / reductions"),
    ("something_new", "other"),
])
def test_kernels_are_sorted_by_name(prof, name, want):
    assert prof.category(name) == want


def test_busy_time_merges_overlapping_kernels(prof):
    assert prof.busy_us([]) == 0
    assert prof.busy_us([(0, 10), (5, 15), (20, 30)]) == 25        # 0-15 and 20-30
    assert prof.busy_us([(0, 100), (10, 20), (30, 40)]) == 100     # nested in a long one
    assert prof.busy_us([(10, 20), (0, 5)]) == 15                  # any order


def test_section_summary(prof):
    kernels = [("nvjet_gemm_a", 0, 600), ("nvjet_gemm_a", 700, 600), ("flash_fwd_kernel", 1300, 300),
               ("vectorized_elementwise_kernel", 1600, 100), ("copy_on_other_stream", 1650, 100)]
    s = prof.summarize(kernels, wall_us=2000)
    assert s["wall_ms"] == 2.0 and s["kernels"] == 5
    assert s["gpu_busy_ms"] == pytest.approx(1.65)                  # 0-600, 700-1750
    assert s["gpu_idle_fraction"] == pytest.approx(0.175)
    assert s["categories_ms"] == {"gemm": 1.2, "attention": 0.3, "other element-wise / reductions": 0.1,
                                  "copies / fills": 0.1}
    assert list(s["categories_ms"]) == ["gemm", "attention", "other element-wise / reductions", "copies / fills"]
    assert s["categories_share"]["gemm"] == pytest.approx(1.2 / 1.7)
    assert s["top_kernels"][0] == {"name": "nvjet_gemm_a", "ms": 1.2, "calls": 2, "category": "gemm"}


def test_idle_gaps_split_into_launch_latency_and_waits_for_the_host(prof):
    # two "steps" of three kernels 2 us apart, 300 us between the steps; a copy on another stream (335-345) covers
    # the gap between 340 and 342
    spans = [(0, 10), (12, 20), (22, 30), (330, 340), (342, 350), (352, 360), (335, 345)]
    g = prof.gaps_us(spans)
    assert g["short_gaps"] == 3 and g["short_gap_ms"] == pytest.approx(0.006)
    assert g["short_gap_median_us"] == 2
    assert g["long_gaps"] == 1 and g["long_gap_ms"] == pytest.approx(0.3)
    assert prof.gaps_us([]) == {"short_gaps": 0, "short_gap_ms": 0.0, "short_gap_median_us": None, "long_gaps": 0,
                                "long_gap_ms": 0.0}
    s = prof.summarize([("k", 0, 10), ("k", 12, 8), ("k", 100, 10)], wall_us=200)
    assert s["idle_gaps"]["short_gaps"] == 1 and s["idle_gaps"]["long_gaps"] == 1
