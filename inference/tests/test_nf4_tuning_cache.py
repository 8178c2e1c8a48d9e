"""The NF4 kernel choices kept on disk between server starts (vlmserve.quant.tuning_cache): what one start stores the
next one reads, per GPU and build; a missing, corrupt or unwritable file never fails a request."""
import json
import threading

import pytest

from vlmserve.quant.tuning_cache import TuningCache, default_path

H200 = "NVIDIA H200 | torch 2.11.0+cu130 | triton 3.6.0 | cuda 13.0"
H100 = "NVIDIA H100 80GB HBM3 | torch 2.11.0+cu130 | triton 3.6.0 | cuda 13.0"
CHOICE = {"block_m": 16, "block_n": 128, "num_warps": 4, "num_stages": 2, "r": 4, "waves": 2, "chunk_mib": 0,
          "w_is_a": True, "lut": 1, "x_split": False}


def test_a_choice_stored_by_one_start_is_read_by_the_next_on_the_same_gpu_and_build_only(tmp_path):
    path = tmp_path / "cache" / "nf4-tuning.json"
    TuningCache(path, H200).put("16|4096|13696|torch.bfloat16|True|False", CHOICE)
    assert TuningCache(path, H200).get("16|4096|13696|torch.bfloat16|True|False") == CHOICE
    assert TuningCache(path, H200).get("32|4096|13696|torch.bfloat16|True|False") is None
    assert TuningCache(path, H100).get("16|4096|13696|torch.bfloat16|True|False") is None


def test_servers_sharing_the_file_keep_each_others_choices(tmp_path):
    path = tmp_path / "nf4-tuning.json"
    a, b = TuningCache(path, H200), TuningCache(path, H100)     # both opened before either wrote
    a.put("a", CHOICE)
    b.put("b", dict(CHOICE, lut=2))
    threads = [threading.Thread(target=TuningCache(path, H200).put, args=(f"k{i}", CHOICE)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    data = json.loads(path.read_text())
    assert data[H100] == {"b": dict(CHOICE, lut=2)}
    assert "a" in data[H200]
    assert [p.name for p in tmp_path.iterdir()] == ["nf4-tuning.json"]     # no temporary file left behind


@pytest.mark.parametrize("text", ["", "{not json", "[1, 2]", json.dumps({H200: "not a dict"})])
def test_a_corrupt_file_is_an_empty_one_and_is_rewritten(tmp_path, text):
    path = tmp_path / "nf4-tuning.json"
    path.write_text(text)
    cache = TuningCache(path, H200)
    assert cache.get("a") is None
    cache.put("a", CHOICE)
    assert TuningCache(path, H200).get("a") == CHOICE


def test_an_unwritable_place_keeps_the_choice_in_memory_and_warns_once(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    cache = TuningCache(blocker / "sub" / "nf4-tuning.json", H200)   # a directory under a file cannot be made
    with caplog.at_level("WARNING", logger="vlmserve.quant"):
        cache.put("a", CHOICE)
        cache.put("b", CHOICE)
    assert cache.get("a") == CHOICE and cache.get("b") == CHOICE
    assert len([r for r in caplog.records if "not saved" in r.message]) == 1


def test_where_the_file_lives(monkeypatch, tmp_path):
    monkeypatch.delenv("VLMSERVE_TUNING_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_path() == tmp_path / "vlmserve" / "nf4-tuning.json"
    monkeypatch.setenv("VLMSERVE_TUNING_CACHE", str(tmp_path / "mine.json"))
    assert default_path() == tmp_path / "mine.json"
    for off in ("", "off"):
        monkeypatch.setenv("VLMSERVE_TUNING_CACHE", off)
        assert default_path() is None
        memory_only = TuningCache(default_path(), H200)
        memory_only.put("a", CHOICE)
        assert memory_only.get("a") == CHOICE
    assert sorted(p.name for p in tmp_path.iterdir()) == []
