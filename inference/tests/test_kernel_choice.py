"""The decode-attention switch: a value outside the choices is refused with them, and CPU serving keeps the plain
torch path whatever the switch says (the Triton kernel is the default where Triton runs: test_triton_decode checks that
in Triton's interpreter, in subprocesses, so that no kernel module of this process is made an interpreted one)."""
import pytest
import torch

from vlmserve.engine.kv_cache import _fused_decode


@pytest.mark.parametrize("value", [None, "triton", "torch"])
def test_cpu_serving_keeps_the_torch_path(monkeypatch, value):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    if value is None:
        monkeypatch.delenv("VLMSERVE_DECODE_ATTENTION", raising=False)
    else:
        monkeypatch.setenv("VLMSERVE_DECODE_ATTENTION", value)
    assert _fused_decode(torch.device("cpu")) is None


def test_an_unknown_choice_is_refused_with_the_choices(monkeypatch):
    monkeypatch.setenv("VLMSERVE_DECODE_ATTENTION", "fastest")
    with pytest.raises(ValueError, match="VLMSERVE_DECODE_ATTENTION must be one of triton, torch, got 'fastest'"):
        _fused_decode(torch.device("cpu"))


def test_fastest_keeps_the_quickest_and_says_why_others_were_not_used():
    from vlmserve.kernel_choice import Rejected, fastest

    def measure(c):
        if c == "wrong":
            raise Rejected("output differs")
        if c == "too big":
            raise RuntimeError("out of shared memory")
        return {"a": 5.0, "b": 3.0, "c": 4.0}[c]

    best, timings = fastest(["a", "wrong", "b", "too big", "c"], measure, "a")
    assert best == "b"
    assert timings == [("a", 5.0, None), ("wrong", None, "output differs"), ("b", 3.0, None),
                       ("too big", None, "RuntimeError: out of shared memory"), ("c", 4.0, None)]
    # a baseline already timed (cuBLAS) stays the choice unless a candidate beats it
    assert fastest(["a", "c"], measure, "baseline", 3.5)[0] == "baseline"
    assert fastest([], measure, "baseline")[0] == "baseline"


def test_relative_max_error_is_against_the_reference_scale_and_nan_fails_any_bound():
    import torch

    from vlmserve.kernel_choice import relative_max_error

    ref = torch.tensor([[4.0, -2.0], [1.0, 0.0]])
    assert relative_max_error(ref, ref) == 0.0
    assert relative_max_error(ref + torch.tensor([[0.0, 0.04], [0.0, 0.0]]), ref) == pytest.approx(0.01)
    assert not relative_max_error(torch.full_like(ref, float("nan")), ref) <= 1.0


@pytest.mark.parametrize("raw,want", [(None, 7), ("", 7), (" 12 ", 12), ("16", 16)])
def test_env_int_reads_a_whole_number_or_the_default(monkeypatch, raw, want):
    from vlmserve.kernel_choice import env_int

    if raw is None:
        monkeypatch.delenv("VLMSERVE_TEST_INT", raising=False)
    else:
        monkeypatch.setenv("VLMSERVE_TEST_INT", raw)
    assert env_int("VLMSERVE_TEST_INT", 7, 1, 16) == want


@pytest.mark.parametrize("raw", ["abc", "0", "-5", "17", "1e9", "99999999999999999999", "8; rm -rf /"])
def test_env_int_refuses_anything_else_with_the_variable_named(monkeypatch, raw):
    from vlmserve.kernel_choice import env_int

    monkeypatch.setenv("VLMSERVE_TEST_INT", raw)
    with pytest.raises(ValueError, match="VLMSERVE_TEST_INT"):
        env_int("VLMSERVE_TEST_INT", 7, 1, 16)
