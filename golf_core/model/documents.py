"""Documents in a token stream: BOS-delimited segments and their ``cu_seqlens`` (PR #1530).

Every document of the challenge's shards starts with the BOS token (id 1 in the SP8192 data).
A packed row of tokens is cut into *segments* that attention must not cross:

* a segment starts at position 0 of the row (even mid-document), and at every BOS;
* with ``max_len > 0`` a segment longer than ``max_len`` is cut every ``max_len`` tokens,
  counted from its own start (#1530 cuts at the training sequence length, 2048).

The segments of a batch ``[B, T]`` are listed over its flattened ``B*T`` tokens (every row
start is a segment start) as ``cu_seqlens``: int32 boundaries ``[s_0 = 0, s_1, ..., B*T]``,
padded with ``B*T`` to a multiple of ``bucket`` entries so that compiled shapes stay few
(#1530 pads to multiples of 64). That is what FlashAttention's ``flash_attn_varlen_func``
takes; ``segment_ids`` turns it back into a per-position segment index for a dense mask.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

#: The BOS id of the challenge's SentencePiece shards.
DEFAULT_BOS_ID = 1
#: ``cu_seqlens`` is padded to a multiple of this many entries (#1530's bucket).
CU_BUCKET = 64


def bos_positions(tokens, bos_id: int = DEFAULT_BOS_ID) -> np.ndarray:
    """Indices (int64, ascending) of every ``bos_id`` in a 1-D token array or tensor."""
    arr = tokens.cpu().numpy() if isinstance(tokens, Tensor) else np.asarray(tokens)
    if arr.ndim != 1:
        raise ValueError(f"bos_positions takes a 1-D token array, got shape {arr.shape}")
    return np.flatnonzero(arr == bos_id).astype(np.int64)


def segment_starts(doc_starts: Sequence[int], total_len: int, max_len: int = 0) -> list[int]:
    """Segment starts of a row of ``total_len`` tokens whose documents start at ``doc_starts``.

    Position 0 is always a start; each document ``[start, next_start)`` is further cut every
    ``max_len`` tokens from its start when ``max_len > 0``.
    """
    starts = [int(s) for s in doc_starts if 0 <= int(s) < total_len]
    if not starts or starts[0] != 0:
        starts = [0] + starts
    out: list[int] = []
    ends = starts[1:] + [total_len]
    for start, end in zip(starts, ends):
        if max_len > 0:
            out.extend(range(start, end, max_len))
        else:
            out.append(start)
    return out


def pad_boundaries(boundaries: Sequence[int], total_len: int, bucket: int = CU_BUCKET,
                   device=None) -> Tensor:
    """``boundaries`` (ending with ``total_len``) as int32, padded with ``total_len`` to a multiple of ``bucket``."""
    n = len(boundaries)
    padded = -(-n // bucket) * bucket if bucket > 0 else n
    cu = torch.full((padded,), int(total_len), dtype=torch.int32)
    cu[:n] = torch.as_tensor(list(boundaries), dtype=torch.int32)
    return cu if device is None else cu.to(device)


def cu_seqlens_for(tokens: Tensor, bos_id: int = DEFAULT_BOS_ID, max_len: int = 0,
                   bucket: int = CU_BUCKET) -> Tensor:
    """``cu_seqlens`` (int32, on ``tokens``' device) of the segments of ``tokens [B, T]``
    flattened to ``B*T`` positions; rows never share a segment."""
    if tokens.ndim != 2:
        raise ValueError(f"cu_seqlens_for takes token ids [B, T], got shape {tuple(tokens.shape)}")
    B, T = tokens.shape
    rows = tokens.detach().cpu().numpy()
    boundaries: list[int] = []
    for b in range(B):
        boundaries.extend(b * T + s for s in segment_starts(bos_positions(rows[b], bos_id).tolist(), T, max_len))
    boundaries.append(B * T)
    return pad_boundaries(boundaries, B * T, bucket, device=tokens.device)


def segment_ids(cu_seqlens: Tensor, batch: int, seq_len: int) -> Tensor:
    """The segment index ``[batch, seq_len]`` (int64) of every position, from ``cu_seqlens``
    over the flattened ``batch*seq_len`` positions (padding entries are ignored)."""
    pos = torch.arange(batch * seq_len, device=cu_seqlens.device, dtype=cu_seqlens.dtype)
    return (torch.searchsorted(cu_seqlens, pos, right=True) - 1).view(batch, seq_len)


def max_segment_len(cu_seqlens: Tensor) -> int:
    """The longest segment in ``cu_seqlens`` (padding entries give length 0)."""
    if cu_seqlens.numel() < 2:
        return 0
    return int((cu_seqlens[1:] - cu_seqlens[:-1]).max())


class DocumentMask:
    """How a model keeps attention inside documents: the BOS id and the segment cut length.

    Install with ``model.set_document_mask(DocumentMask(...))``; the model then derives
    ``cu_seqlens`` from its input ids (or takes the ones the training loop computed) and every
    attention layer attends only within a segment.

    :param bos_id: the token that starts a document.
    :param max_len: cut segments every ``max_len`` tokens (0: only at BOS and row starts).
    """

    def __init__(self, bos_id: int = DEFAULT_BOS_ID, max_len: int = 0):
        if max_len < 0:
            raise ValueError(f"DocumentMask max_len must be >= 0, got {max_len}")
        self.bos_id = int(bos_id)
        self.max_len = int(max_len)

    def cu_seqlens(self, tokens: Tensor) -> Tensor:
        """``cu_seqlens_for(tokens, bos_id, max_len)`` (see the module docstring)."""
        return cu_seqlens_for(tokens, self.bos_id, self.max_len)

    def max_seqlen(self, seq_len: int) -> int:
        """An upper bound on a segment's length in rows of ``seq_len`` tokens (FlashAttention's
        ``max_seqlen``): ``min(seq_len, max_len)``, or ``seq_len`` without cuts."""
        return min(seq_len, self.max_len) if self.max_len > 0 else seq_len

    def __repr__(self) -> str:
        return f"DocumentMask(bos_id={self.bos_id}, max_len={self.max_len})"
