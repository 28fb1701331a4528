"""``--tiny``: one documented override set that runs any shipped recipe on a CPU in minutes.

It keeps the recipe's plugin stack and every setting that is not about size, and shrinks
what is: the data become the bundled demo corpus at vocab 1024, the model 64 wide with 4
heads (2 KV heads) while keeping its depth and MLP ratio, sequences 128 tokens, 40 steps of
4,096 tokens with no wallclock cap, 2 compile-warmup steps, no compile, float32 on the CPU,
and evaluation on the first 16,385 validation tokens (sliding stays sliding, stride 32).
Plugins whose options depend on model size scale them through ``TechniqueInfo.tiny``.
"""
from __future__ import annotations

from typing import Any

from .recipe import deep_merge

TINY_SEQ_LEN = 128

TINY_OVERRIDES: dict[str, Any] = {
    "data": {"source": "demo", "vocab_size": 1024},
    "model": {"model_dim": 64, "num_heads": 4, "num_kv_heads": 2, "dtype": "fp32", "attention_backend": "sdpa"},
    "train": {
        "iterations": 40,
        "max_wallclock_seconds": 0.0,
        "reserve_seconds": 0.0,
        "warmup_steps": 2,
        "warmdown_iters": 10,
        "train_batch_tokens": 4096,
        "train_seq_len": TINY_SEQ_LEN,
        "compile": "off",
        "device": "cpu",
        "log_every": 10,
        "val_loss_every": 0,
    },
    "eval": {"seq_len": TINY_SEQ_LEN, "batch_tokens": 4096, "max_tokens": 16385},
}

_DROP_DATA_KEYS = ("root", "dataset_dir", "tokenizer_path", "train_shards")


def apply_tiny(data: dict[str, Any]) -> dict[str, Any]:
    """Return raw recipe data with the tiny override set applied."""
    out = deep_merge(data, TINY_OVERRIDES)
    for k in _DROP_DATA_KEYS:
        out.get("data", {}).pop(k, None)
    ev = out.setdefault("eval", {})
    if ev.get("stride") is not None:
        ev["stride"] = 32
    out.setdefault("train", {}).pop("grad_accum_steps", None)
    return out
