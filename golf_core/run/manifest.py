"""What ``manifest.json`` records about a run: versions, device, world size, seed, git state."""
from __future__ import annotations

import platform
import subprocess
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from .. import __version__
from ..context import RunContext
from ..scripted import AUDITED


def _git_state() -> dict[str, Any]:
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True, timeout=5)
        if sha.returncode == 0:
            return {"sha": sha.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        pass
    return {"sha": None, "dirty": None}


def manifest(ctx: RunContext, model: Optional[nn.Module] = None) -> dict[str, Any]:
    """What ``manifest.json`` records: versions, device, world size, seed, git state."""
    ap = ctx.plugins
    dev: dict[str, Any] = {"type": ctx.device.type}
    if ctx.device.type == "cuda":
        dev["name"] = torch.cuda.get_device_name(ctx.device)
        dev["cuda"] = torch.version.cuda
    return {
        "golf_core": __version__,
        "plugins": [
            {"name": n, "dist": ap.entries[n].dist, "version": ap.entries[n].version,
             "options": ap.options[n].model_dump(mode="json")}
            for n in ap.order
        ],
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": dev,
        "world_size": ctx.world_size,
        "seed": ctx.recipe.train.seed,
        "attention_backend": getattr(model, "attention_backend", None) if model is not None else None,
        "recipe_sha256": ctx.recipe.sha256(),
        "source": ctx.recipe.source_path,
        "tiny": ctx.recipe.tiny,
        # the golf checkout's git state and every shard's sha256: for golf runs (a script has no
        # checkout, and reads the data its prepare_data.py built)
        **({"git": _git_state(), "data": _data_record(ctx)} if AUDITED else {}),
    }


def _data_record(ctx: RunContext) -> dict[str, Any]:
    """The tokenizer and shards the run read (imported lazily: the data layer is read on demand,
    so an exported script that never builds data does not ship it)."""
    from ..data.preflight import data_record

    return data_record(ctx.data)
