"""The NF4 kernel choices kept across server starts, in one small JSON file.

Tuning times every candidate kernel for each (row bucket, layer shape) the first time it is met: at full size that
is dozens of shapes x up to 14 candidates, compiled and timed while the first requests wait, and a pipeline that
starts its embedded server every night would pay it every night. A choice holds for one GPU model with one build of
torch, Triton and CUDA (that is the file's section key), and only while it is still one of the code's candidates
(a stored choice that is not is ignored and tuned again).

The file is $VLMSERVE_TUNING_CACHE, else $XDG_CACHE_HOME/vlmserve/nf4-tuning.json (~/.cache/...); an empty
VLMSERVE_TUNING_CACHE (or "off") keeps choices in memory only. Reading or writing it never fails a request: a
missing, unreadable or corrupt file is an empty one, a failed write is logged once.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path

log = logging.getLogger("vlmserve.quant")


def default_path() -> Path | None:
    raw = os.environ.get("VLMSERVE_TUNING_CACHE")
    if raw is not None:
        return None if raw.strip() in ("", "off") else Path(raw).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vlmserve" / "nf4-tuning.json"


class TuningCache:
    """{section: {key: choice}} on disk; `section` names the GPU and software build, `key` the tuned case."""

    def __init__(self, path: Path | None, section: str):
        self.path, self.section = path, section
        self._lock = threading.Lock()
        self._warned = False
        self._entries: dict[str, dict] = self._read().get(section, {})

    def _read(self) -> dict:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {s: e for s, e in data.items() if isinstance(s, str) and isinstance(e, dict)}

    def get(self, key: str) -> dict | None:
        choice = self._entries.get(key)
        return choice if isinstance(choice, dict) else None

    def put(self, key: str, choice: dict) -> None:
        """Stores one choice, merged into what the file holds now (other servers may have added theirs)."""
        with self._lock:
            self._entries[key] = choice
            if self.path is None:
                return
            try:
                data = self._read()
                data.setdefault(self.section, {}).update(self._entries)
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".nf4-tuning.")
                try:
                    with os.fdopen(fd, "w") as f:
                        json.dump(data, f, indent=1, sort_keys=True)
                    os.replace(tmp, self.path)      # readers see the old file or the new one, never half of one
                finally:
                    if os.path.exists(tmp):
                        os.unlink(tmp)
            except OSError as e:
                if not self._warned:
                    self._warned = True
                    log.warning("NF4 kernel choices not saved to %s (%s): the next start tunes again", self.path, e)
