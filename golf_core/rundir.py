"""The run directory: the files a run leaves behind, written so that nothing is half-written."""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Optional

RESOLVED = "resolved.toml"
MANIFEST = "manifest.json"
TRAIN_LOG = "train.log"
METRICS = "metrics.jsonl"
ARTIFACT = "artifact.bin"
RESULT = "result.json"


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if hasattr(v, "item") and callable(v.item):
        try:
            return v.item()
        except (ValueError, RuntimeError):
            pass
    if isinstance(v, Path):
        return str(v)
    return v


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_jsonable(data), indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write bytes to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class RunLog:
    """``train.log`` (human lines) and ``metrics.jsonl`` (one JSON object per event).

    Only the main process writes; every process may call it. With ``echo`` the human lines
    also go to the terminal (through ``printer`` when a progress display owns it).
    """

    def __init__(self, out_dir: Optional[Path], is_main: bool = True, echo: bool = True):
        self.out_dir = out_dir
        self.is_main = is_main
        self.echo = echo
        self.printer = print
        self._t0 = time.time()
        self._log = self._metrics = None
        if out_dir is not None and is_main:
            out_dir.mkdir(parents=True, exist_ok=True)
            self._log = open(out_dir / TRAIN_LOG, "a", buffering=1)
            self._metrics = open(out_dir / METRICS, "a", buffering=1)

    def info(self, msg: str) -> None:
        """Write one human line (``key:value`` pairs by convention)."""
        if not self.is_main:
            return
        if self._log is not None:
            self._log.write(msg + "\n")
        if self.echo:
            self.printer(msg)

    def metric(self, **kv: Any) -> None:
        """Append one JSON event to ``metrics.jsonl`` (a wall-clock ``time`` is added)."""
        if not self.is_main or self._metrics is None:
            return
        kv.setdefault("time", round(time.time() - self._t0, 4))
        self._metrics.write(json.dumps(_jsonable(kv)) + "\n")

    def close(self) -> None:
        """Flush and close the files."""
        for fh in (self._log, self._metrics):
            if fh is not None:
                fh.close()
        self._log = self._metrics = None


def read_result(out_dir: Path) -> Optional[dict[str, Any]]:
    """``result.json`` of a finished run, or ``None``."""
    p = Path(out_dir) / RESULT
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError:
        return None


def read_metrics(out_dir: Path) -> list[dict[str, Any]]:
    """Every event of ``metrics.jsonl`` (a torn last line is ignored)."""
    p = Path(out_dir) / METRICS
    out = []
    if p.is_file():
        for line in p.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out
