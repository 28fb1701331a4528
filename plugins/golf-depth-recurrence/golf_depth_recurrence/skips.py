"""Skip slots of the PR #1204 layout: the extra decoder positions reuse the last slot.

#1204 keeps the baseline's ``min(L//2, L - L//2)`` skip slots when recurrence adds encoder
outputs; decoder position ``j`` uses slot ``min(j, n - 1)``. ``SharedLastSlotSkips`` wraps any
``Skips`` (plain or gated) to do that while presenting ``num_positions`` slots to the model.
"""
from __future__ import annotations

from torch import Tensor, nn


class SharedLastSlotSkips(nn.Module):
    """``forward(j, x, skip) = inner(min(j, inner.num_skips - 1), x, skip)``.

    :param inner: the real skips module (its parameter names keep ``skip_weights``/``skip_gates``).
    :param num_positions: decoder positions that pop a skip (the schedule's ``num_skips``).
    """

    def __init__(self, inner: nn.Module, num_positions: int):
        super().__init__()
        self.inner = inner
        self.num_skips = int(num_positions)
        self.dim = inner.dim

    @property
    def skip_weights(self):
        """The inner module's ``skip_weights``."""
        return self.inner.skip_weights

    def forward(self, i: int, x: Tensor, skip: Tensor) -> Tensor:
        """Merge ``skip`` at decoder position ``i`` through slot ``min(i, n - 1)``."""
        return self.inner(min(i, self.inner.num_skips - 1), x, skip)

    def rebuild(self, num_skips: int) -> nn.Module:
        """A fresh module presenting ``num_skips`` slots with the same number of real slots."""
        fresh = self.inner.rebuild(self.inner.num_skips)
        return fresh if num_skips == fresh.num_skips else SharedLastSlotSkips(fresh, num_skips)

    def extra_repr(self) -> str:
        """Show the positions and the real slot count."""
        return f"num_positions={self.num_skips}, slots={self.inner.num_skips}"
