"""Runs a test script under Triton's CPU interpreter, in a subprocess: TRITON_INTERPRET is read when Triton is
imported, so it cannot be switched on inside the pytest process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

INFERENCE = Path(__file__).resolve().parents[1]

# Triton 3.6's interpreter holds scalars as 1-element arrays and makes Python ints of them with int(array), which
# numpy 2.4 refuses ("only 0-dimensional arrays can be converted"): every loop bound computed from program_id
# failed. The preamble has that conversion take the element instead.
PREAMBLE = r"""
import numpy as _np
import triton.runtime.interpreter as _interp
if hasattr(_interp, "_patch_lang_tensor"):
    _patch_tensor = _interp._patch_lang_tensor

    def _patch_lang_tensor(tensor, scope):
        _patch_tensor(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(_np.asarray(self.handle.data).reshape(-1)[0]))
    _interp._patch_lang_tensor = _patch_lang_tensor
"""


def run_interpreted(script: str, *args: str, drop_env: tuple[str, ...] = ()) -> None:
    """Runs `script` (which prints "ok" last) with TRITON_INTERPRET=1; fails with its stderr otherwise."""
    env = {k: v for k, v in os.environ.items() if k not in drop_env}
    env.update(TRITON_INTERPRET="1", PYTHONPATH=str(INFERENCE))
    proc = subprocess.run([sys.executable, "-c", PREAMBLE + script, *args], cwd=INFERENCE, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]
