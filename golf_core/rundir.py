"""The run directory: the files a run leaves behind, written so that nothing is half-written."""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any, Optional

from .errors import GolfError

RESOLVED = "resolved.toml"
MANIFEST = "manifest.json"
TRAIN_LOG = "train.log"
METRICS = "metrics.jsonl"
ARTIFACT = "artifact.bin"
RESULT = "result.json"
CHECKPOINTS = "checkpoints"

#: What ``golf run`` (and ``golf check`` after it) leaves in a run directory: ``--force``
#: deletes exactly these, and a folder holding anything else is never deleted.
RUN_ENTRIES = (RESOLVED, MANIFEST, TRAIN_LOG, METRICS, ARTIFACT, RESULT, CHECKPOINTS,
               "eval_ledger.jsonl", "compliance.json", ".check", "code")


def _is_run_entry(name: str) -> bool:
    return name in RUN_ENTRIES or name.endswith(".tmp") or name.endswith(".part")


def claim_run_dir(out: Path, *, force: bool = False) -> None:
    """Check that a new run may write into ``out`` (nothing is created here).

    A missing or empty folder is fine. A folder holding a run refuses with one line naming it
    (``--resume`` continues it, ``--force`` replaces it); with ``force`` the previous run's files
    are deleted, but never a folder that also holds files golf did not write.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise GolfError(f"--out {out} is a file, not a folder")
    if not out.is_dir():
        return
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return
    foreign = [n for n in entries if not _is_run_entry(n)]
    if foreign:
        raise GolfError(f"--out {out} is not empty and is not a golf run directory (it holds {foreign[0]!r}); "
                        f"choose another --out")
    if not force:
        state = "a finished run" if (out / RESULT).is_file() else "an unfinished run"
        raise GolfError(f"--out {out} already holds {state}; --resume {out} continues it, --force replaces it")
    for name in entries:
        p = out / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def default_run_dir(recipe: str, now: Optional[float] = None) -> Path:
    """``runs/<recipe stem>-<YYYYmmdd-HHMMSS>`` (under torchrun rank 0's choice is broadcast)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return Path("runs") / f"{Path(recipe).stem}-{stamp}"


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
    write_bytes_atomic(path, (json.dumps(_jsonable(data), indent=2, sort_keys=False) + "\n").encode())


def write_text_atomic(path: Path, text: str) -> None:
    """Write UTF-8 text to ``path`` through a temporary file and a rename."""
    write_bytes_atomic(path, text.encode("utf-8"))


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


def load_run_recipe(run_dir: Path):
    """The resolved recipe of a run directory (``golf run --resume``), with the source its
    ``manifest.json`` recorded (so the resumed run logs the same recipe). Its ``tiny`` flag stays
    off: resolved.toml already holds the scaled sizes and options."""
    from . import tomlio
    from .recipe import validate_recipe_data

    p = Path(run_dir) / RESOLVED
    if not p.is_file():
        raise GolfError(f"{run_dir}: no {RESOLVED}; is it a golf run directory?")
    recipe = validate_recipe_data(tomlio.load_file(p), str(p))
    try:
        meta = json.loads((Path(run_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        meta = {}
    recipe.source_path = meta.get("source") or str(p)
    if meta.get("tiny"):
        # the first run imported the --tiny scaler, so its code (and code_bytes) held it
        import golf_core.tiny  # noqa: F401
    return recipe
