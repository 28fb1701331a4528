"""Greedy nearest-neighbour row order in L1 distance (#1855's similarity sort).

Start at row 0; repeatedly append the unused row nearest (L1) to the last one appended, the
lowest index on ties. Similar rows end up adjacent, which a context-mixing compressor exploits.
Distances of int8 rows are exact integers here (int32 sums), so the order is deterministic.
"""
from __future__ import annotations

import numpy as np


def similarity_order(rows: np.ndarray) -> np.ndarray:
    """The greedy L1 order of the rows of a 2-D int8 array, as uint16 (at most 65,536 rows)."""
    n = rows.shape[0]
    if n > 1 << 16:
        raise ValueError(f"similarity_order stores uint16 indices; {n} rows is too many")
    m = rows.astype(np.int32)
    unused = np.ones(n, dtype=bool)
    order = np.empty(n, dtype=np.int64)
    order[0], unused[0] = 0, False
    cur = m[0]
    for i in range(1, n):
        idx = np.flatnonzero(unused)
        best = idx[int(np.argmin(np.abs(m[idx] - cur).sum(axis=1)))]
        order[i], unused[best] = best, False
        cur = m[best]
    return order.astype(np.uint16)
