"""The TTT-only hash embedding (PR #1529, ``HASH_EMBED_ENABLED``): a zero-initialised
``Embedding(size, d)`` created at eval time (so it costs no artifact bytes), indexed by the
token bigram ``(prev * 2039 + cur) mod size`` with ``prev = 0`` at each sequence's first
position, added to the normed token embedding (``model.embed_post_norm``; ``x0`` includes it),
and trained with the model by the score-first TTT optimizer on already-scored chunks.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

#: The bigram multiplier of #1529.
BIGRAM_MULT = 2039


def bigram_index(input_ids: Tensor, size: int, mult: int = BIGRAM_MULT) -> Tensor:
    """``(prev * mult + cur) mod size`` per position, ``prev = 0`` at position 0 of each row."""
    prev = torch.zeros_like(input_ids)
    prev[:, 1:] = input_ids[:, :-1]
    return (prev * mult + input_ids) % size


class HashEmbedTransform(nn.Module):
    """``model.embed_post_norm`` that adds the hash embedding after the previous transform."""

    def __init__(self, inner: nn.Module, size: int, dim: int):
        super().__init__()
        self.inner = inner
        self.size = int(size)
        self.hash_emb = nn.Embedding(self.size, dim)
        nn.init.zeros_(self.hash_emb.weight)

    def forward(self, x: Tensor, input_ids: Tensor) -> Tensor:
        """``inner(x, ids) + hash_emb(bigram_index(ids))``."""
        x = self.inner(x, input_ids)
        return x + self.hash_emb(bigram_index(input_ids, self.size))


def install_hash_embedding(model: nn.Module, size: int) -> HashEmbedTransform:
    """Wrap ``model.embed_post_norm`` with a fresh zero hash embedding on the model's device;
    returns it (``remove_hash_embedding`` undoes it)."""
    if not hasattr(model, "embed_post_norm"):
        raise AttributeError(f"{type(model).__name__} has no embed_post_norm seam for the hash embedding")
    dev = model.tok_emb.weight.device
    t = HashEmbedTransform(model.embed_post_norm, size, model.tok_emb.weight.shape[1]).to(dev)
    model.embed_post_norm = t
    return t


def remove_hash_embedding(model: nn.Module, installed: HashEmbedTransform) -> None:
    """Put back the transform ``installed`` wrapped."""
    model.embed_post_norm = installed.inner
