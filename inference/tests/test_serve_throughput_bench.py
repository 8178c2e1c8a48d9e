"""bench/serve_throughput.py's arithmetic, on CPU (the bench itself needs the GPU)."""
from __future__ import annotations

from conftest import bench_module


def test_steady_state_counts_only_the_closed_loop_window():
    """Images answered while `concurrency` were in flight, from the first wave's end to the last submission."""
    bench = bench_module("serve_throughput")
    # 2 clients, 1 image/s each after a first wave that took 3 s; the last images go out at t=9
    submitted = [0.0, 0.0, 3.0, 3.0, 4.0, 4.0, 5.0, 5.0, 6.0, 6.0, 7.0, 7.0, 8.0, 8.0, 9.0, 9.0]
    done = [3.0, 3.0, 4.0, 4.0, 5.0, 5.0, 6.0, 6.0, 7.0, 7.0, 8.0, 8.0, 9.0, 9.0, 12.0, 12.0]
    got = bench.steady_state(submitted, done, 2)
    assert got["steady_window_s"] == 6.0 and got["images_per_s_steady"] == 12 / 6.0
    assert bench.steady_state(submitted[:3], done[:3], 2)["images_per_s_steady"] is None   # no window
