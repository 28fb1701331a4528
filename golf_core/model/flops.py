"""Model FLOPs per token, counted the way pg_core §7.2 counts them (for MFU in benchmarks).

Training FLOPs per token = ``6 * N_eff + A * c * T * d_attn`` where

* ``N_eff`` = the linear-layer weights of every block *application* in the active schedule (a looped block
  counts each time it runs) plus the LM head (the tied embedding counts once, as the head; the
  embedding lookup is free);
* ``A`` = block applications, ``T`` = sequence length, ``d_attn`` = heads x head_dim;
* ``c`` = 6 under the causal convention (half the score matrix, as FlashAttention computes it)
  or 12 under the full (PaLM / nanoGPT) convention.

Norms, softcap, XSA, the loss and optimizer work are left out as negligible. A forward pass
alone is a third of the training figure. Baseline at T=1024: 130,547,712 (causal);
PR #1394 at T=2048: 284,688,384 with looping off, 379,060,224 with looping on.
"""
from __future__ import annotations

from torch import nn


def _matrix_params(module: nn.Module) -> int:
    """Weights of the linear layers inside ``module`` (control tensors such as resid_mix excluded)."""
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Linear))


def matmul_params_per_token(model: nn.Module) -> int:
    """``N_eff``: linear-layer weights of every block application in the active layout, plus the head."""
    encoder, decoder = model.schedule.active()
    per_block = [_matrix_params(b) for b in model.blocks]
    head = model.lm_head.weight.numel() if model.lm_head is not None else model.tok_emb.weight.numel()
    return sum(per_block[i] for i in encoder + decoder) + head


def flops_per_token(model: nn.Module, seq_len: int, causal: bool = True, training: bool = True) -> int:
    """Model FLOPs per token at ``seq_len`` (pg_core §7.2); ``training=False`` gives the forward third."""
    encoder, decoder = model.schedule.active()
    attn_dim = model.config.num_heads * model.config.head_dim
    total = 6 * matmul_params_per_token(model) + len(encoder + decoder) * (6 if causal else 12) * seq_len * attn_dim
    return total if training else total // 3
