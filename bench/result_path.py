"""Where a GPU bench writes its JSON: into $OUT when set (the device machine's folder whose files come back, so
only the file name is kept), else the path asked for; its folder is made."""
from __future__ import annotations

import os
from pathlib import Path


def result_path(asked: str | Path) -> Path:
    out = Path(os.environ["OUT"]) / Path(asked).name if os.environ.get("OUT") else Path(asked)
    out.parent.mkdir(parents=True, exist_ok=True)
    return out
