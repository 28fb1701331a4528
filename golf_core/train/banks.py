"""The parameter banks of the #1019 lineage (#1229, #1306, #1423): their layout, for the clip.

Those records hold the block matrices in four 3-D banks (``qo`` = every layer's Q then every
layer's output projection, ``kv`` = K then V, ``mlp_up``, ``mlp_down``) and clip gradients with
``clip_grad_norm_(base_model.parameters())``: one norm per bank, summed in the record's
parameter order (its own tensors first: the skip weights/gates, then the four banks; then its
modules: the embedding, then each block's remaining tensors). From #1523 on (#1529, #1530 and
later) the banks are registered first, before the skip tensors (``banks_first``). golf keeps
per-layer linears; :func:`bank_clip_order` lists golf's parameters in that order, each bank as a
tuple, for :class:`~golf_core.train.optim.OptimizerSet`.
"""
from __future__ import annotations

from typing import Any

from torch import nn

#: (bank, golf's per-layer module suffixes in bank order): ``qo`` holds every layer's Q, then every layer's out.
BANKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("qo", ("attn.c_q", "attn.proj")),
    ("kv", ("attn.c_k", "attn.c_v")),
    ("mlp_up", ("mlp.fc",)),
    ("mlp_down", ("mlp.proj",)),
)


def bank_clip_order(model: nn.Module, banks_first: bool = False) -> list[Any]:
    """Trainable parameters in the banked record's ``parameters()`` order; each bank a tuple
    (``banks_first``: the four banks lead, then the skip tensors, as #1529/#1530 register them)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    by_name = dict(named)
    layers = sorted({int(n.split(".")[1]) for n, _ in named if n.startswith("blocks.")})
    banks, banked = [], set()
    for _, suffixes in BANKS:
        members = tuple(by_name[f"blocks.{i}.{s}.weight"] for s in suffixes for i in layers
                        if f"blocks.{i}.{s}.weight" in by_name)
        if members:
            banks.append(members)
            banked.update(id(p) for p in members)
    skips = [p for n, p in named if n.startswith("skips.")]
    modules = [p for n, p in named if not n.startswith(("skips.", "blocks."))]
    blocks = [p for n, p in named if n.startswith("blocks.") and id(p) not in banked]
    if banks_first:
        return [*banks, *skips, *modules, *blocks]
    return [*skips, *banks, *modules, *blocks]
