"""Shared test fixtures: the golden fixture files (copied into tests/data, never read from
../shared) and a tiny random checkpoint made once per session."""
from __future__ import annotations

import os
import sys
from pathlib import Path

# These tests check the vlmserve of this checkout, in-process and in the subprocesses they start,
# whichever checkout the shared venv's editable install happens to point at.
INFERENCE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(INFERENCE))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(INFERENCE), os.environ.get("PYTHONPATH")) if p)

import pytest  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

DATA = Path(__file__).parent / "data"
BENCH = INFERENCE.parent / "bench"


def bench_module(name: str):
    """bench/NAME.py loaded as module NAME (registered, as dataclasses look their module up): the benches are
    scripts, not a package, and their logic is tested on CPU here. bench/ goes on the path, as for a script run
    from there (the benches import their shared helpers)."""
    import importlib.util

    if str(BENCH) not in sys.path:
        sys.path.append(str(BENCH))

    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(BENCH / f"{name}.py"):
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod
FIXTURE_A = DATA / "glm4v-tiny-a"


@pytest.fixture(scope="session")
def fixture_dir() -> Path:
    return FIXTURE_A


@pytest.fixture(scope="session")
def fixture_inputs() -> dict[str, torch.Tensor]:
    return load_file(FIXTURE_A / "inputs.safetensors")


@pytest.fixture(scope="session")
def fixture_expected() -> dict[str, torch.Tensor]:
    return load_file(FIXTURE_A / "expected.safetensors")


@pytest.fixture(scope="session")
def fixture_model():
    from vlmserve.weights import load_model
    model, _ = load_model(FIXTURE_A, "cpu", "float32")
    return model


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """A make-tiny checkpoint (official layout, 2 shards, tiny tokenizer)."""
    from vlmserve.tiny import make_tiny
    return make_tiny(tmp_path_factory.mktemp("tiny") / "ckpt", seed=0)
