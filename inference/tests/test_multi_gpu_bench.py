"""bench/multi_gpu.py's smoke run on CPU: two real tiny vlmserve servers behind the pipeline's pooling rule,
one killed midway; every image must still be answered (the pool takes the dead server out and retries its
requests on the other), and an image's requests stay on one server while it is up."""
from __future__ import annotations

import json

import pytest

from conftest import bench_module

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def bench():
    return bench_module("multi_gpu")


def test_two_tiny_servers_one_killed_midway_every_image_answered(bench, tmp_path):
    out = tmp_path / "multi_gpu.json"
    rc = bench.main(["--cpu", "--model", "tiny-random", "--counts", "2", "--images-per-server", "8",
                     "--concurrency-per-server", "3", "--slots", "8", "--new-tokens", "12", "--image-size", "64",
                     "--tasks", "2", "--kill-one-after-images", "4", "--ready-timeout", "300", "--out", str(out)])
    assert rc == 0
    run = json.loads(out.read_text())["runs"][0]
    assert run["servers"] == 2 and run["images"] == 16 and run["requests"] == 32
    s0, s1 = run["endpoints"]
    assert run["killed"] == "s1"
    assert not s1["up"] and s1["taken_out"]                        # the dead server left the pool
    assert s0["up"] and s0["errors"] == 0
    assert s0["answered"] + s1["answered"] == 32                   # nothing lost: retried on the survivor
    assert s0["answered"] >= 16 and s1["answered"] >= 1            # both served before the kill
    assert run["images_per_s"] > 0 and run["host_cpu_s_per_image"] > 0
    assert run["efficiency_vs_1"] is None                          # no one-server run to compare with


def test_pool_rule_affinity_then_fewest_in_flight(bench):
    import asyncio

    async def scenario():
        a, b = bench.Endpoint("a", "http://a"), bench.Endpoint("b", "http://b")
        pool = bench.Pool([a, b])
        first = await pool.acquire("img1")
        second = await pool.acquire("img1")            # same image: same endpoint, though it is busier
        other = await pool.acquire("img2")             # another image: the least busy
        assert first is second and other is not first
        pool.take_out(first, "test")
        moved = await pool.acquire("img1", avoid=None)  # its endpoint is out: the image moves
        assert moved is other
        for key, e in (("img1", first), ("img1", second), ("img2", other), ("img1", moved)):
            pool.release(key, e)
        assert pool.pins == {} and a.in_flight == 0 and b.in_flight == 0
        pool.take_out(other, "test")
        with pytest.raises(RuntimeError, match="no inference endpoint"):
            await pool.acquire("img3", give_up_s=0.3)

    asyncio.run(scenario())


@pytest.mark.parametrize("counts", ["0", "a,b", "-1", "1,,2", "65", ""])
def test_bad_counts_are_refused(bench, counts, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--cpu", "--model", "tiny-random", "--counts", counts])
    assert exc.value.code == 2
    assert "--counts" in capsys.readouterr().err


def test_bad_sizes_are_refused(bench, capsys):
    assert bench.main(["--cpu", "--model", "tiny-random", "--new-tokens", "0"]) == 2
    assert "--new-tokens must be at least 1" in capsys.readouterr().err
