"""Which parameters an adapter trains: freezing blocks, and ``requires_grad`` set for a block.

The test-time trainers (pre-quant TTT, score-first TTT) train every parameter except those of
the first ``freeze_blocks`` blocks; the SLOT adapters train no parameter at all. Both restore
the flags (and the train/eval mode) they found, whatever happens inside.
"""
from __future__ import annotations

import contextlib
from typing import Iterable, Iterator

from torch import nn

from .banks import BANKS


def trainable_parameters(model: nn.Module, freeze_blocks: int, *, keep_bank_matrices: bool = False) -> list[nn.Parameter]:
    """Every parameter of ``model`` except those of ``model.blocks[0:freeze_blocks]``, in
    ``model.parameters()`` order. ValueError when blocks are to be frozen but there are none.

    ``keep_bank_matrices``: the frozen blocks' matrices that the #1019 lineage holds in its
    model-level parameter banks (:data:`golf_core.train.banks.BANKS`: Q, K, V, out, MLP up/down)
    stay trainable, as freezing ``blocks[i].parameters()`` there froze only the block's own scales
    (#1306 / #1423 ``ttt_adapt_adamw``)."""
    frozen_ids: set[int] = set()
    if freeze_blocks > 0:
        blocks = getattr(model, "blocks", None)
        if blocks is None:
            raise ValueError(f"freeze_blocks={freeze_blocks} but {type(model).__name__} has no .blocks")
        banked = tuple(f"{s}.weight" for _, suffixes in BANKS for s in suffixes)
        for b in list(blocks)[:freeze_blocks]:
            frozen_ids.update(id(p) for n, p in b.named_parameters() if not (keep_bank_matrices and n.endswith(banked)))
    return [p for p in model.parameters() if id(p) not in frozen_ids]


@contextlib.contextmanager
def grad_only_for(model: nn.Module, params: Iterable[nn.Parameter]) -> Iterator[None]:
    """``requires_grad`` on ``params`` and off on every other parameter of ``model`` for the
    block; the flags are restored afterwards."""
    keep = {id(p) for p in params}
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(id(p) in keep)
        yield
    finally:
        for p, f in flags:
            p.requires_grad_(f)


@contextlib.contextmanager
def training_only(model: nn.Module, params: Iterable[nn.Parameter]) -> Iterator[None]:
    """:func:`grad_only_for` ``params``, and the train/eval mode restored afterwards too."""
    was_training = model.training
    try:
        with grad_only_for(model, params):
            yield
    finally:
        model.train(was_training)


@contextlib.contextmanager
def frozen(model: nn.Module) -> Iterator[None]:
    """``requires_grad = False`` on every parameter for the block (restored afterwards)."""
    with grad_only_for(model, ()):
        yield
