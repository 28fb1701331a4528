"""Resumable training checkpoints, written so that a kill mid-write never spoils the last one.

Layout under a checkpoint root (``<run>/checkpoints/``)::

    LATEST                 name of the newest complete checkpoint (replaced atomically)
    step_0000100/
        meta.json          step, world size, format version, files
        shared.pt          state common to all ranks (the model), written by rank 0
        rank0.pt ...       each rank's own state (optimizers, loader, RNG, clock, plugins)

A checkpoint is written into a hidden ``.step_XXXXXXX.tmp`` folder, every file flushed and
fsynced, and only then renamed to its final name and named in ``LATEST``; a SIGKILL at any
moment leaves either the previous checkpoint or the new one, complete. Leftover ``.tmp``
folders are ignored and removed by the next save.

Files hold tensors and plain values only (NumPy arrays are converted), so they load with
``torch.load(weights_only=True)``: opening a checkpoint cannot run code.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch

from ..errors import GolfError
from . import distributed as D

#: Format version written into ``meta.json``.
CHECKPOINT_VERSION = 1
LATEST = "LATEST"
META = "meta.json"
SHARED = "shared.pt"

PathLike = Union[str, "os.PathLike[str]"]


def checkpoint_name(step: int) -> str:
    """Folder name of the checkpoint taken after ``step`` steps."""
    return f"step_{step:07d}"


def rank_file(rank: int) -> str:
    """File name of one rank's state."""
    return f"rank{rank}.pt"


# -- plain-data conversion --------------------------------------------------------------------

_ND = "__ndarray__"


def to_plain(obj: Any, where: str = "state") -> Any:
    """Copy ``obj`` keeping tensors and plain values; NumPy arrays/scalars are converted.

    GolfError naming the path of the first value that is none of: None, bool, int, float,
    str, bytes, torch.Tensor, torch.dtype, list, tuple, dict (str/int keys).
    """
    if obj is None or isinstance(obj, (bool, int, float, str, bytes, torch.dtype)):
        return obj
    if isinstance(obj, torch.Tensor):
        return obj.detach()
    if isinstance(obj, np.ndarray):
        return {_ND: torch.from_numpy(np.ascontiguousarray(obj).copy()), "dtype": str(obj.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (list, tuple)):
        seq = [to_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return seq if isinstance(obj, list) else tuple(seq)
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise GolfError(f"checkpoint {where}: key {k!r} is not a str or int")
            out[k] = to_plain(v, f"{where}.{k}")
        return out
    raise GolfError(f"checkpoint {where}: {type(obj).__name__} is not a tensor or plain value; convert it in state_dict()")


def from_plain(obj: Any) -> Any:
    """Invert :func:`to_plain` (NumPy arrays come back as arrays)."""
    if isinstance(obj, dict):
        if _ND in obj and set(obj) == {_ND, "dtype"}:
            return obj[_ND].numpy().astype(np.dtype(obj["dtype"]), copy=True)
        return {k: from_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(from_plain(v) for v in obj)
    return obj


# -- atomic file helpers ----------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _save_file(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# -- save -------------------------------------------------------------------------------------


def save_checkpoint(
    root: PathLike,
    step: int,
    state: dict[str, Any],
    shared: Optional[dict[str, Any]] = None,
    *,
    keep_last: int = 2,
    meta: Optional[dict[str, Any]] = None,
) -> Path:
    """Write one checkpoint; a collective call when torch.distributed is up.

    :param root: the checkpoint root (created when missing).
    :param step: steps done; names the folder.
    :param state: this rank's state (every rank passes its own).
    :param shared: state common to all ranks; only rank 0's is written.
    :param keep_last: complete checkpoints to keep (older ones are deleted); 0 keeps all.
    :param meta: extra plain values for ``meta.json``.
    :return: the checkpoint folder.
    """
    root = Path(root)
    rank, world = D.get_rank(), D.get_world_size()
    name = checkpoint_name(step)
    tmp = root / f".{name}.tmp"
    final = root / name
    if rank == 0:
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob(".step_*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir()
    plain_state = to_plain(state, f"rank{rank}")
    plain_shared = to_plain(shared, "shared") if (shared is not None and rank == 0) else None
    D.barrier()
    _save_file(tmp / rank_file(rank), plain_state)
    if plain_shared is not None:
        _save_file(tmp / SHARED, plain_shared)
    D.barrier()
    if rank == 0:
        info = {
            "version": CHECKPOINT_VERSION,
            "step": step,
            "world_size": world,
            "files": [rank_file(r) for r in range(world)] + ([SHARED] if plain_shared is not None else []),
            **(meta or {}),
        }
        _write_text_atomic(tmp / META, json.dumps(info, indent=2) + "\n")
        _fsync_dir(tmp)
        trash = None
        if final.exists():
            trash = root / f".{name}.old.tmp"
            shutil.rmtree(trash, ignore_errors=True)
            os.replace(final, trash)
        os.replace(tmp, final)
        _write_text_atomic(root / LATEST, name + "\n")
        _fsync_dir(root)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
        if keep_last > 0:
            done = sorted(p for p in root.glob("step_*") if p.is_dir() and (p / META).is_file())
            for old in done[:-keep_last]:
                if old != final:
                    shutil.rmtree(old, ignore_errors=True)
    D.barrier()
    return final


# -- find and load ----------------------------------------------------------------------------


def _complete(d: Path) -> bool:
    return d.is_dir() and (d / META).is_file()


def latest_checkpoint(root: PathLike) -> Optional[Path]:
    """The newest complete checkpoint under ``root`` (``LATEST``, else the highest step), or None.

    ``root`` is a checkpoint root or a run folder (its ``checkpoints/`` is searched).
    """
    root = Path(root)
    latest = root / LATEST
    if latest.is_file():
        d = root / latest.read_text().strip()
        if _complete(d):
            return d
    done = sorted(p for p in root.glob("step_*") if _complete(p))
    if done:
        return done[-1]
    if (root / "checkpoints").is_dir():
        return latest_checkpoint(root / "checkpoints")
    return None


def find_checkpoint(path: PathLike) -> Path:
    """Resolve a checkpoint folder, a checkpoint root or a run folder to a checkpoint folder.

    GolfError naming ``path`` when it holds no complete checkpoint.
    """
    p = Path(path)
    if _complete(p):
        return p
    for root in (p, p / "checkpoints"):
        if root.is_dir():
            found = latest_checkpoint(root)
            if found is not None:
                return found
    raise GolfError(f"no complete checkpoint in {str(p)!r} (looked for {LATEST} and step_* folders)")


def read_meta(ckpt: PathLike) -> dict[str, Any]:
    """``meta.json`` of a checkpoint folder."""
    p = Path(ckpt) / META
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise GolfError(f"checkpoint {str(p)!r} is unreadable: {e}") from None


def _load_file(path: Path) -> Any:
    try:
        return from_plain(torch.load(path, map_location="cpu", weights_only=True))
    except FileNotFoundError:
        raise GolfError(f"checkpoint file {str(path)!r} is missing") from None
    except Exception as e:  # noqa: BLE001 - a corrupt file is bad input, said in one line
        text = str(e)
        if "weights_only" in text or "Weights only" in text:
            # torch's own text advises weights_only=False, i.e. running the file's code: never say that
            raise GolfError(f"checkpoint file {str(path)!r} is unreadable: it holds objects other than tensors "
                            f"and plain values, which golf refuses to load") from None
        reason = text.splitlines()[0] if text.strip() else ""
        raise GolfError(f"checkpoint file {str(path)!r} is unreadable: {type(e).__name__}: {reason}") from None


def verify_checkpoint(ckpt: PathLike) -> dict[str, Any]:
    """Read every file a checkpoint lists (as :func:`load_checkpoint` would) and return its meta;
    GolfError naming the first file that is missing or does not load."""
    ckpt = Path(ckpt)
    meta = read_meta(ckpt)
    if meta.get("version") != CHECKPOINT_VERSION:
        raise GolfError(f"checkpoint {str(ckpt)!r} has format version {meta.get('version')!r}; this golf reads {CHECKPOINT_VERSION}")
    for name in meta.get("files", []):
        if not isinstance(name, str) or "/" in name or "\\" in name or name.startswith("."):
            raise GolfError(f"checkpoint {str(ckpt)!r} lists a bad file name {name!r}")
        _load_file(ckpt / name)
    return meta


def _candidates(root: Path) -> list[Path]:
    """Complete checkpoints under a checkpoint root, the one ``LATEST`` names first, then newest first."""
    done = sorted((p for p in root.glob("step_*") if _complete(p)), reverse=True)
    latest = root / LATEST
    if latest.is_file():
        named = root / latest.read_text().strip()
        if named in done:
            done.remove(named)
            done.insert(0, named)
    return done


def resolve_resume(path: PathLike, log: Any = None) -> tuple[Path, Path]:
    """``golf run --resume PATH``: ``(run_dir, checkpoint)`` for a run folder, its checkpoint root
    or one checkpoint folder.

    A named checkpoint folder must load. Otherwise the newest checkpoint that loads is taken: a
    corrupt latest one is skipped (``log`` is told why) for the previous good one.
    """
    p = Path(path)
    if not p.exists():
        raise GolfError(f"--resume {p}: no such run directory or checkpoint")
    if _complete(p) or (p / META).exists():
        verify_checkpoint(p)
        return p.parent.parent, p
    root = p / "checkpoints" if (p / "checkpoints").is_dir() else p
    run_dir = root.parent if root.name == "checkpoints" else p
    skipped = []
    for ckpt in _candidates(root):
        try:
            verify_checkpoint(ckpt)
        except GolfError as e:
            skipped.append(str(e))
            continue
        for why in skipped:
            if log is not None:
                log(f"skipping a corrupt checkpoint: {why}")
        return run_dir, ckpt
    if skipped:
        raise GolfError(f"--resume {p}: no checkpoint loads; the newest: {skipped[0]}")
    raise GolfError(f"--resume {p}: no complete checkpoint in {str(root)!r} (looked for {LATEST} and step_* folders)")


def load_checkpoint(ckpt: PathLike, rank: Optional[int] = None, world_size: Optional[int] = None) -> tuple[dict[str, Any], Optional[dict[str, Any]], dict[str, Any]]:
    """Read ``(rank_state, shared_state, meta)`` of one rank (tensors on CPU).

    GolfError when the format version is unknown or the checkpoint was written by another
    number of ranks.
    """
    ckpt = find_checkpoint(ckpt)
    rank = D.get_rank() if rank is None else rank
    world_size = D.get_world_size() if world_size is None else world_size
    meta = read_meta(ckpt)
    if meta.get("version") != CHECKPOINT_VERSION:
        raise GolfError(f"checkpoint {str(ckpt)!r} has format version {meta.get('version')!r}; this golf reads {CHECKPOINT_VERSION}")
    if meta.get("world_size") != world_size:
        raise GolfError(
            f"checkpoint {str(ckpt)!r} was written by {meta.get('world_size')} processes; resume it with the same number (this run has {world_size})"
        )
    state = _load_file(ckpt / rank_file(rank))
    shared = _load_file(ckpt / SHARED) if (ckpt / SHARED).is_file() else None
    return state, shared, meta
