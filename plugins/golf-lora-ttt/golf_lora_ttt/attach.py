"""Run a model's own forward with a ``LoRABank`` added at its projections (PR #1530
``forward_ttt``), through forward hooks, so every technique a plugin put into the model's
forward (gates, smears, XSA, parallel lanes, looping) is in the TTT forward too.

Where the adapters go (per virtual layer ``s``, counted by the calls of the attention modules
in one forward; the MLP of a layer runs after its attention):

* ``attn.c_q / c_k / c_v``: output ``+ q/k/v_lora[s](n)`` with ``n`` the attention input;
* ``attn`` (the whole attention module): output ``+ o_lora[s](n)``;
* ``mlp``: output ``+ mlp_lora[s](m)`` with ``m`` the MLP input;
* the head: ``model.raw_logits(h) + head_lora(h)`` before the softcap.

A bank whose ``B`` are zero adds exactly zero: the TTT forward is then the model's forward.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
from torch import Tensor, nn

from .lora import LoRABank


def attention_modules(model: nn.Module) -> list[nn.Module]:
    """The attention module of every physical block (``blocks[i].attn``)."""
    blocks = getattr(model, "blocks", None)
    if blocks is None or not all(hasattr(b, "attn") and hasattr(b, "mlp") for b in blocks):
        raise AttributeError(f"{type(model).__name__} has no blocks with .attn and .mlp for LoRA TTT")
    return [b.attn for b in blocks]


def virtual_layers(model: nn.Module) -> int:
    """Layers one forward runs (the active layer schedule's encoder + decoder)."""
    schedule = getattr(model, "schedule", None)
    if schedule is not None and hasattr(schedule, "active"):
        enc, dec = schedule.active()
        return len(list(enc)) + len(list(dec))
    return len(model.blocks)


def bank_shape(model: nn.Module) -> dict[str, int]:
    """``slots, dim, kv_dim, vocab`` of a bank for ``model`` as it runs now."""
    attn = attention_modules(model)[0]
    return {"slots": virtual_layers(model), "dim": int(attn.c_q.weight.shape[1]),
            "kv_dim": int(attn.c_k.weight.shape[0]), "vocab": int(model.tok_emb.weight.shape[0])}


class _Slot:
    def __init__(self) -> None:
        self.index = -1
        self.calls = 0


@contextlib.contextmanager
def attached(model: nn.Module, bank: LoRABank) -> Iterator[_Slot]:
    """Hooks adding ``bank`` to ``model`` for the block; yields the slot counter (``index``:
    the virtual layer running; ``calls``: attention calls seen). Always removes the hooks."""
    slot = _Slot()
    handles = []

    def begin_layer(_m: nn.Module, _args: Any) -> None:
        slot.index += 1
        slot.calls += 1

    def adder(target: str):
        def hook(_m: nn.Module, args: Any, out: Tensor) -> Tensor:
            d = bank.delta(target, slot.index, args[0])
            return out if d is None else out + d.to(out.dtype)
        return hook

    head_owner = "raw_logits" in vars(model)
    base_head = model.raw_logits
    try:
        for attn in attention_modules(model):
            handles.append(attn.register_forward_pre_hook(begin_layer))
            handles.append(attn.c_q.register_forward_hook(adder("q")))
            handles.append(attn.c_k.register_forward_hook(adder("k")))
            handles.append(attn.c_v.register_forward_hook(adder("v")))
            handles.append(attn.register_forward_hook(adder("o")))
        for b in model.blocks:
            handles.append(b.mlp.register_forward_hook(adder("mlp")))
        if bank.head is not None:
            def raw_logits(hidden: Tensor) -> Tensor:
                z = base_head(hidden)
                return z + bank.head(hidden).to(z.dtype)
            model.raw_logits = raw_logits
        yield slot
    finally:
        for h in handles:
            h.remove()
        if bank.head is not None:
            if head_owner:
                model.raw_logits = base_head
            else:
                del model.raw_logits


def ttt_logits(model: nn.Module, bank: LoRABank, x: Tensor) -> Tensor:
    """Soft-capped logits ``[B, T, V]`` of ``model`` on ``x [B, T]`` with ``bank`` added
    (``B`` must be the bank's batch size)."""
    if x.shape[0] != bank.bsz:
        raise ValueError(f"a LoRA bank of {bank.bsz} rows cannot run a batch of {x.shape[0]}")
    with attached(model, bank) as slot:
        logits = model.compute_logits(model.forward_hidden(x))
    if slot.calls != bank.slots:
        raise RuntimeError(f"the model ran {slot.calls} attention layers; the LoRA bank has {bank.slots} slots")
    return logits


def per_token_nll(logits: Tensor, y: Tensor) -> Tensor:
    """``[B, T]`` cross-entropy of the logits in float32 (#1530's ``forward_ttt`` loss, reduction
    none; float64 logits stay float64)."""
    B, T, V = logits.shape
    z = logits if logits.dtype == torch.float64 else logits.float()
    return torch.nn.functional.cross_entropy(z.reshape(-1, V), y.reshape(-1), reduction="none").reshape(B, T)
