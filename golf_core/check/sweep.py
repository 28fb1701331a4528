"""The vocabulary sweep: normalization of what an adapter *scores*, for adapters whose logits
the tap cannot see (C2 where the reported NLL is the only output).

At a row ``r`` (a target index), run the eval-time pipeline once for every token id ``w`` as the
target, on the stream cut just after it (``x[0..r]`` then ``w``), and sum ``exp(-nll_r)``. For an
adapter whose distribution at ``r`` depends only on the prefix and is normalized, the sum is 1:
every run sees the same prefix and reads a different entry of the same distribution. A sum
away from 1 means the scored probabilities are no distribution: either not normalized, or (#1229)
the adapter moved probability toward whichever token is the target. Costs one eval per id.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

#: |sum - 1| allowed (float32 softmax summed over the vocabulary).
SWEEP_TOL = 1e-3


@dataclass
class SweepResult:
    """Sum over the vocabulary of the scored probability at target index ``row``."""

    row: int
    vocab_size: int
    total: float
    max_p: float
    argmax: int
    aborted: Optional[str] = None

    @property
    def ok(self) -> bool:
        """True when the sum is 1 within ``SWEEP_TOL``."""
        return self.aborted is None and abs(self.total - 1.0) <= SWEEP_TOL

    def as_dict(self) -> dict[str, Any]:
        """Plain data for compliance.json."""
        return {"row": self.row, "t": self.row + 1, "vocab_size": self.vocab_size, "total": self.total,
                "max_p": self.max_p, "argmax": self.argmax, "aborted": self.aborted, "ok": self.ok}


def vocab_sweep(run: Callable[[torch.Tensor, Sequence[int]], Any], stream: torch.Tensor, row: int,
                vocab_size: int) -> SweepResult:
    """Sum ``exp(-nll)`` at target index ``row`` over every token id as that target.

    :param run: ``run(stream, watch) -> Outcome`` (``golf_core.check.flip.Outcome``), the eval-time
        pipeline on a given stream.
    """
    base = stream[: row + 2].clone()
    total, best, arg = 0.0, -1.0, -1
    for w in range(vocab_size):
        base[row + 1] = w
        out = run(base, ())
        if out.aborted is not None:
            return SweepResult(row, vocab_size, total, best, arg, aborted=out.aborted)
        p = float(np.exp(-out.nll[row]))
        total += p
        if p > best:
            best, arg = p, w
    return SweepResult(row, vocab_size, total, best, arg)
