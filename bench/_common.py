"""Shared helpers of the GPU benches (``bench/gpu_train.py``, ``bench/gpu_eval.py``).

* :func:`environment`: date, versions (torch, CUDA, cuDNN, FlashAttention packages), device,
  driver, threads, load and git state, for every JSON result;
* :func:`peak_flops`: dense bf16 peak of known GPUs, for model FLOPs utilization;
* :func:`chain_tokens` / :func:`write_synthetic_dataset`: learnable random token shards in the
  challenge's layout, so that no FineWeb download is needed;
* :func:`record_layout`: a folder in a record script's layout (``DATA_DIR/datasets/fineweb10B_sp<V>``,
  ``DATA_DIR/tokenizers/fineweb_<V>_bpe.model``) pointing at any dataset's shards;
* :func:`write_result`: JSON under ``bench/results/<name>-<device>.json``.
"""
from __future__ import annotations

import json
import math
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: Dense bf16 tensor-core peak per GPU (FLOP/s) by device-name fragment; the first match wins,
#: so the specific names come first. H100 SXM and H200: 989 TFLOP/s (pg_core §7.3).
PEAK_BF16_FLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIE", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),           # "NVIDIA H100 80GB HBM3" (SXM)
    ("H200", 989e12),
    ("GH200", 989e12),
    ("B200", 2250e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("A10G", 70e12),
    ("RTX 4090", 165e12),
)


# ---------------------------------------------------------------------------------------------
# environment
# ---------------------------------------------------------------------------------------------


def _pkg_version(*names: str) -> Optional[str]:
    from importlib.metadata import PackageNotFoundError, version

    for n in names:
        try:
            return version(n)
        except PackageNotFoundError:
            continue
    return None


def _driver_version() -> Optional[str]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def _git_state() -> dict[str, Any]:
    try:
        sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain"], capture_output=True, text=True,
                               timeout=5)
        if sha.returncode == 0:
            return {"sha": sha.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        pass
    return {"sha": None, "dirty": None}


def device_info(device: torch.device) -> dict[str, Any]:
    """Type, name and (on CUDA) capability, memory, count and driver of ``device``."""
    device = torch.device(device)
    if device.type != "cuda":
        return {"type": device.type, "name": platform.processor() or platform.machine(),
                "cpu_count": os.cpu_count()}
    props = torch.cuda.get_device_properties(device)
    return {"type": "cuda", "name": torch.cuda.get_device_name(device), "index": device.index,
            "capability": f"{props.major}.{props.minor}", "total_memory_gib": round(props.total_memory / 2**30, 2),
            "multiprocessors": props.multi_processor_count, "count": torch.cuda.device_count(),
            "driver": _driver_version()}


def environment(device: torch.device) -> dict[str, Any]:
    """Everything a result needs to be compared later: date, versions, device, threads, load, git."""
    from golf_core import __version__

    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "golf_core": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "flash_attn": _pkg_version("flash_attn", "flash-attn"),
        "flash_attn_3": _pkg_version("flash_attn_3", "flash-attn-3", "flash_attn_interface"),
        "device": device_info(device),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "git": _git_state(),
    }


def device_slug(env: dict[str, Any]) -> str:
    """``cpu`` or the GPU name in lowercase with dashes (``nvidia-h100-80gb-hbm3``)."""
    dev = env["device"]
    if dev["type"] != "cuda":
        return dev["type"]
    return re.sub(r"[^a-z0-9]+", "-", dev["name"].lower()).strip("-")


def peak_flops(device: torch.device) -> tuple[Optional[float], str]:
    """Dense bf16 peak FLOP/s of ``device`` and where it came from; ``(None, why)`` when unknown
    (always on CPU, where MFU is reported as n/a)."""
    device = torch.device(device)
    if device.type != "cuda":
        return None, "n/a on CPU"
    name = torch.cuda.get_device_name(device).upper()
    for frag, flops in PEAK_BF16_FLOPS:
        if frag in name:
            return flops, f"table: {frag} dense bf16 {flops / 1e12:.0f} TFLOP/s"
    return None, f"unknown GPU {name!r}: pass --peak-tflops"


# ---------------------------------------------------------------------------------------------
# memory and time
# ---------------------------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    """Wait for queued work on ``device`` (no-op on CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def peak_rss_mib() -> float:
    """Peak resident memory of this process (``ru_maxrss``, MiB; it never goes down)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_memory_mib(device: torch.device) -> tuple[float, str]:
    """``torch.cuda.max_memory_allocated`` on CUDA, else the process's ``ru_maxrss``; and which."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"
    return peak_rss_mib(), "ru_maxrss"


def reset_peak_memory(device: torch.device) -> None:
    """Reset the CUDA peak counter (the CPU peak cannot be reset)."""
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


# ---------------------------------------------------------------------------------------------
# synthetic data
# ---------------------------------------------------------------------------------------------


def chain_tokens(n: int, vocab_size: int, seed: int = 0, branching: int = 4, noise: float = 0.05,
                 lanes: int = 4096) -> np.ndarray:
    """``n`` uint16 tokens: ``lanes`` independent random bigram chains laid end to end, each token
    followed by one of ``branching`` fixed successors (or, with probability ``noise``, any token).
    Learnable, so training losses move; generated lane-parallel (about 1 s per 100M tokens)."""
    if n <= 0:
        return np.zeros(0, dtype=np.uint16)
    rng = np.random.default_rng(seed)
    lanes = max(1, min(lanes, n))
    succ = rng.integers(0, vocab_size, size=(vocab_size, branching), dtype=np.int64)
    steps = -(-n // lanes)
    out = np.empty((steps, lanes), dtype=np.uint16)
    cur = rng.integers(0, vocab_size, size=lanes, dtype=np.int64)
    for t in range(steps):
        out[t] = cur
        nxt = succ[cur, rng.integers(0, branching, size=lanes)]
        jump = rng.random(lanes) < noise
        nxt[jump] = rng.integers(0, vocab_size, size=int(jump.sum()))
        cur = nxt
    return np.ascontiguousarray(out.T).reshape(-1)[:n]


def demo_tokenizer(vocab_size: int) -> Path:
    """The demo build's SentencePiece model at ``vocab_size`` (built and cached on first use)."""
    from golf_core.config import DataSection
    from golf_core.data.paths import resolve_data

    return resolve_data(DataSection(source="demo", vocab_size=vocab_size), build_missing=True).tokenizer_path


def write_synthetic_dataset(root: Path, vocab_size: int, train_tokens: int, val_tokens: int, *,
                            shard_tokens: int = 50_000_000, seed: int = 0,
                            tokenizer: Optional[Path] = None):
    """Write :func:`chain_tokens` shards under ``root`` in the record layout and return DataPaths.

    ``root/datasets/fineweb10B_sp<V>/fineweb_{train,val}_NNNNNN.bin``; the tokenizer (given, else
    the demo build's at ``vocab_size``; only byte tables and the record scripts read it) is
    copied to ``root/tokenizers/fineweb_<V>_bpe.model``.
    """
    from golf_core.data.paths import DataPaths
    from golf_core.data.shards import write_shard

    root = Path(root)
    ds = root / "datasets" / f"fineweb10B_sp{vocab_size}"
    tk = root / "tokenizers" / f"fineweb_{vocab_size}_bpe.model"
    ds.mkdir(parents=True, exist_ok=True)
    tk.parent.mkdir(parents=True, exist_ok=True)
    toks = chain_tokens(train_tokens + val_tokens, vocab_size, seed=seed)
    train_files = []
    for i, lo in enumerate(range(0, train_tokens, shard_tokens)):
        train_files.append(write_shard(ds / f"fineweb_train_{i:06d}.bin", toks[lo: min(lo + shard_tokens, train_tokens)]))
    val_file = write_shard(ds / "fineweb_val_000000.bin", toks[train_tokens:])
    src = Path(tokenizer) if tokenizer is not None else demo_tokenizer(vocab_size)
    shutil.copyfile(src, tk)
    return DataPaths(ds, tk, train_files, [val_file], "synthetic", vocab_size)


def record_layout(root: Path, data, *, val_tokens: Optional[int] = None) -> Path:
    """A ``DATA_DIR`` in a record script's layout whose shards link to ``data``'s (DataPaths).

    Training shards and the tokenizer are symlinked; the validation stream is linked, or, with
    ``val_tokens``, replaced by a copy of its first ``val_tokens`` tokens (the record then spends
    seconds, not minutes, on its end-of-training validation). Returns ``root``.
    """
    from golf_core.data.shards import read_shard, write_shard

    root = Path(root)
    V = data.vocab_size
    ds = root / "datasets" / f"fineweb10B_sp{V}"
    tk = root / "tokenizers" / f"fineweb_{V}_bpe.model"
    ds.mkdir(parents=True, exist_ok=True)
    tk.parent.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(sorted(data.train_files)):
        link = ds / f"fineweb_train_{i:06d}.bin"
        if not link.exists():
            link.symlink_to(Path(f).resolve())
    if val_tokens is None:
        for i, f in enumerate(sorted(data.val_files)):
            link = ds / f"fineweb_val_{i:06d}.bin"
            if not link.exists():
                link.symlink_to(Path(f).resolve())
    else:
        got = np.concatenate([np.asarray(read_shard(f)) for f in sorted(data.val_files)])[:val_tokens]
        write_shard(ds / "fineweb_val_000000.bin", got)
    if not tk.exists():
        tk.symlink_to(Path(data.tokenizer_path).resolve())
    return root


# ---------------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------------


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return _clean(float(v))
    return v


def write_result(name: str, data: dict[str, Any], out: Optional[Path] = None) -> Path:
    """Write ``data`` as JSON to ``out``, default ``bench/results/<name>-<device slug>.json``
    (non-finite floats become null). Returns the path."""
    path = Path(out) if out is not None else RESULTS / f"{name}-{device_slug(data['env'])}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_clean(data), indent=2) + "\n")
    return path


def fmt(v: Any, spec: str = ".1f", none: str = "n/a") -> str:
    """Format a number for a table, ``n/a`` for None."""
    return none if v is None else format(v, spec)


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    """A plain left/right-aligned text table (first column left, the rest right)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for r in [header, *rows]:
        lines.append("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
