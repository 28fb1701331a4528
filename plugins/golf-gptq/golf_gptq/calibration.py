"""Calibration token batches for GPTQ (techniques.md §10).

* ``train``: a fresh training loader (the core's, or the active ``golf_make_loader``
  provider asked with ``purpose="calibration"``), so the first training batches are replayed,
  as #1394 does inside its 12-second reserve. Legal when it runs inside the training clock.
* ``ar``: sequences the model generates itself (temperature sampling from a random first
  token, full re-forward per token, fixed seed), as #1019. Reads no data. Legal.
* ``val``: the first validation tokens, through ``ctx.read_validation`` so the run is marked
  as training on validation data. Only to reproduce flagged records.
"""
from __future__ import annotations

from typing import Callable, Iterator, Optional

import torch
from torch import Tensor, nn


def loader_batches(loader, n_batches: int, seqs: int, seq_len: int) -> Iterator[Tensor]:
    """``n_batches`` input batches ``[seqs, seq_len]`` from a loader's ``next_batch``."""
    for _ in range(n_batches):
        x, _y = loader.next_batch(seqs * seq_len, seq_len)
        yield x


def token_batches(tokens: Tensor, n_batches: int, seqs: int, seq_len: int) -> list[Tensor]:
    """Cut the leading tokens of a stream into at most ``n_batches`` batches ``[seqs, seq_len]``
    (fewer, and a smaller last batch, when the stream is short)."""
    n_seq = min(n_batches * seqs, (tokens.numel()) // seq_len)
    if n_seq == 0:
        raise ValueError(f"{tokens.numel()} tokens are fewer than one sequence of {seq_len}")
    x = tokens[: n_seq * seq_len].reshape(n_seq, seq_len).long()
    return list(torch.split(x, seqs))


@torch.no_grad()
def generate_sequences(model: nn.Module, n_seqs: int, seq_len: int, vocab_size: int, batch: int = 8,
                       temperature: float = 0.8, seed: int = 42, device: Optional[torch.device] = None,
                       autocast: Optional[Callable] = None) -> list[Tensor]:
    """Autoregressive self-generated sequences (#1019): a uniformly random first token, then
    ``seq_len - 1`` tokens sampled at ``temperature`` from ``model.forward_logits`` re-run on the
    whole prefix (no KV cache). Returns CPU batches ``[<=batch, seq_len]``; deterministic in ``seed``."""
    g = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, n_seqs, batch):
            b = min(batch, n_seqs - start)
            toks = torch.randint(vocab_size, (b, 1), generator=g)
            for _ in range(seq_len - 1):
                x = toks.to(device) if device is not None else toks
                if autocast is not None:
                    with autocast():
                        logits = model.forward_logits(x)[:, -1]
                else:
                    logits = model.forward_logits(x)[:, -1]
                probs = torch.softmax(logits.float().cpu() / temperature, dim=-1)
                nxt = torch.multinomial(probs, 1, generator=g)
                toks = torch.cat([toks, nxt], dim=1)
            out.append(toks)
    finally:
        model.train(was_training)
    return out
