"""The opt-in GPU kernels' switches: a value outside the choices is refused with them, and CPU serving keeps the
plain path whatever the switch says."""
import pytest
import torch

from vlmserve.engine.kv_cache import _fused_decode
from vlmserve.quant.fp8 import _weight_only_kernel


@pytest.mark.parametrize("var,on,pick,choices", [
    ("VLMSERVE_DECODE_ATTENTION", "triton", _fused_decode, "torch, triton"),
    ("VLMSERVE_FP8_DECODE", "w8a16", _weight_only_kernel, "scaled_mm, w8a16"),
])
def test_switches(monkeypatch, var, on, pick, choices):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.delenv(var, raising=False)
    assert pick(torch.device("cpu")) is None                      # off by default
    monkeypatch.setenv(var, "fastest")
    with pytest.raises(ValueError, match=f"{var} must be one of {choices}, got 'fastest'"):
        pick(torch.device("cpu"))
    monkeypatch.setenv(var, on)
    assert pick(torch.device("cpu")) is None                      # CPU serving keeps the plain path
    # (with TRITON_INTERPRET=1 they run on CPU: test_triton_decode and test_fp8_weight_only do, in subprocesses, so
    # that no kernel module of this process is made an interpreted one)
