"""Window schedules: the #1394 sliding form and the baseline's non-overlapping form (techniques.md §13)."""
from __future__ import annotations

import numpy as np
import pytest

from golf_core.errors import GolfError
from golf_core.eval.windows import WindowSchedule

CASES = [(n, L, S) for n in (1, 63, 64, 1000, 1023, 1024, 1025, 4097)
         for L, S in ((128, 64), (128, 128), (256, 64), (64, 1), (100, 30), (64, None))]


def _reference(total, seq_len, stride):
    """R1394's eval_val_sliding loop, transcribed: (ws, wl, s) of every window."""
    stride = seq_len if stride is None else stride
    context = seq_len - stride
    out = []
    for ws in range(0, total, stride):
        if ws + context < total or ws == 0:  # R1394 has no `or ws == 0` (see test_short_stream)
            we = min(ws + seq_len, total)
            out.append((ws, we - ws, 0 if ws == 0 else context))
    return out


@pytest.mark.parametrize("total,seq_len,stride", CASES)
def test_schedule_matches_reference_and_covers_once(total, seq_len, stride):
    s = WindowSchedule(total, seq_len, stride)
    ref = _reference(total, seq_len, stride)
    assert [(w.start, w.length, w.score_from) for w in map(s.window, range(len(s)))] == ref
    cov = np.zeros(total, dtype=int)
    for ws, wl, lo in ref:
        cov[ws + lo: ws + wl] += 1
    assert (cov == 1).all()  # every target exactly once, the tail included
    assert np.array_equal(s.coverage(), cov)
    ctx = seq_len - (stride or seq_len)
    for ws, wl, lo in ref[1:]:
        assert lo == ctx  # context tokens before every scored position after the first window


def test_short_stream_keeps_the_first_window():
    """R1394's literal filter scores nothing when N <= seq_len - stride; we keep window 0."""
    assert [ws for ws in range(0, 63, 64) if ws + (128 - 64) < 63] == []
    s = WindowSchedule(63, 128, 64)
    assert len(s) == 1 and s.window(0).targets == (0, 63)


def test_non_overlapping_is_the_baseline():
    s = WindowSchedule(4096, 1024)
    assert not s.sliding and len(s) == 4 and s.starts.tolist() == [0, 1024, 2048, 3072]
    assert (s.score_from == 0).all() and (s.lengths == 1024).all()
    assert WindowSchedule(4096, 1024, 1024).starts.tolist() == s.starts.tolist()


def test_sp8192_window_count():
    """pg_core.md §3.4: 633,409 windows for the sp8192 validation stream at T=2048, S=64."""
    s = WindowSchedule(40_540_160 - 1, 2048, 64)
    assert len(s) == s.num_windows == 633_409
    assert s.score_hi()[-1] == 40_540_159


def test_rank_slices_partition():
    s = WindowSchedule(10_000, 256, 64)
    for world in (1, 2, 3, 8):
        parts = [s.rank_slice(r, world) for r in range(world)]
        assert parts[0][0] == 0 and parts[-1][1] == len(s)
        assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
        n = len(s)
        assert parts == [(n * r // world, n * (r + 1) // world) for r in range(world)]


def test_chunk_ids_follow_1413():
    s = WindowSchedule(100_000, 2048, 64)
    C = 32768
    n_chunks = -(-100_000 // C)
    want = [min((ws + (0 if ws == 0 else 2048 - 64)) // C, n_chunks - 1) for ws in s.starts.tolist()]
    assert s.chunk_ids(C).tolist() == want


@pytest.mark.parametrize("args", [(100, 64, 65), (100, 64, 0), (0, 64, 64), (100, 0, None)])
def test_bad_schedules(args):
    with pytest.raises(GolfError):
        WindowSchedule(*args)
