"""`pip install ./inference` must bring what the server needs: the package metadata lists exactly the
requirements.txt that scripts/setup-python and the Dockerfile install from."""
from importlib.metadata import requires
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements.txt"


def test_installed_package_declares_the_runtime_requirements():
    listed = [line.split("#")[0].strip() for line in REQUIREMENTS.read_text().splitlines()]
    listed = [line for line in listed if line]
    declared = requires("vlmserve") or []
    assert declared == listed
    assert any(r.startswith("torch") for r in declared) and any(r.startswith("fastapi") for r in declared)
