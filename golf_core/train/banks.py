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

from typing import Any, Optional

import torch
from torch import nn

#: (bank, golf's per-layer module suffixes in bank order): ``qo`` holds every layer's Q, then every layer's out.
BANKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("qo", ("attn.c_q", "attn.proj")),
    ("kv", ("attn.c_k", "attn.c_v")),
    ("mlp_up", ("mlp.fc",)),
    ("mlp_down", ("mlp.proj",)),
)


#: golf modules whose direct parameters the banked records hold on the model itself.
HELPERS: tuple[str, ...] = ("skips.", "trunk.", "embed_transform.")


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
        # the record's own tensors (golf: the direct parameters of its helper modules skips / trunk /
        # embed_transform) follow the banks; its modules' tensors (embedding, blocks, SmearGate's
        # projection) come after, in golf's order (#1851/#1855: smear_lambda before tok_emb, smear_gate last)
        own = [p for n, p in named if n.startswith(HELPERS) and n.count(".") == 1]
        rest = [p for n, p in named if id(p) not in banked and not (n.startswith(HELPERS) and n.count(".") == 1)]
        return [*banks, *own, *rest]
    return [*skips, *banks, *modules, *blocks]


#: ``[train] muon_arithmetic`` values whose clip norm is taken over the record's banks.
BANKED_ARITHMETIC: tuple[str, ...] = ("banks", "banks-first")


def banked_clip_order(model: nn.Module, muon_arithmetic: str) -> Optional[list[Any]]:
    """:func:`bank_clip_order` for a ``[train] muon_arithmetic`` value; ``None`` when that
    arithmetic is not banked (the clip then sums per tensor in ``model.parameters()`` order)."""
    if muon_arithmetic not in BANKED_ARITHMETIC:
        return None
    return bank_clip_order(model, banks_first=muon_arithmetic == "banks-first")


def clip_banked_(order: list[Any], max_norm: float, extra: Optional[list[Any]] = None) -> torch.Tensor:
    """Clip the gradients of ``order`` (``bank_clip_order``'s list; then ``extra``, plain
    parameters) to total norm ``max_norm`` with the record's arithmetic: one norm per bank (its
    members' gradients concatenated, as the record's 3-D bank holds them), one per other tensor,
    in that order, then ``torch.nn.utils.clip_grads_with_norm_``. Returns the total norm."""
    extra = list(extra or [])
    params = [q for e in order for q in (e if isinstance(e, tuple) else (e,))] + extra
    grads = []
    for e in list(order) + extra:
        if isinstance(e, tuple):
            if any(q.grad is not None for q in e):
                grads.append(torch.cat([(q.grad if q.grad is not None else torch.zeros_like(q)).reshape(-1) for q in e]))
        elif e.grad is not None:
            grads.append(e.grad)
    total = torch.nn.utils.get_total_norm(grads, 2.0)
    torch.nn.utils.clip_grads_with_norm_(params, max_norm, total)
    return total
