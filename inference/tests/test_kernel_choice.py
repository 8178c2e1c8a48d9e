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
