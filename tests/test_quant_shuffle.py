"""BSHF byte shuffle: exact layout (pg_core.md §5.8) and round trips."""
from __future__ import annotations

import os

import pytest

from golf_core.errors import ArtifactError
from golf_core.quant import byte_shuffle, byte_unshuffle


def test_exact_layout_stride_2():
    src = bytes([10, 11, 20, 21, 30, 31, 40])  # odd length: the even plane is one longer
    assert byte_shuffle(src) == b"BSHF\x02" + bytes([10, 20, 30, 40, 11, 21, 31])


def test_exact_layout_matches_slicing_formula():
    src = os.urandom(1001)
    assert byte_shuffle(src, 2) == b"BSHF" + bytes([2]) + src[0::2] + src[1::2]
    assert byte_shuffle(src, 3) == b"BSHF" + bytes([3]) + src[0::3] + src[1::3] + src[2::3]


def test_fp16_low_and_high_bytes_separate():
    import torch
    t = torch.tensor([1.0, 2.0, -3.5], dtype=torch.float16)
    raw = t.numpy().tobytes()
    out = byte_shuffle(raw)
    lows, highs = out[5:8], out[8:11]
    assert lows == bytes(raw[i] for i in (0, 2, 4)) and highs == bytes(raw[i] for i in (1, 3, 5))


@pytest.mark.parametrize("stride", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 64, 1000, 4097])
def test_round_trip(stride, n):
    src = os.urandom(n)
    out = byte_shuffle(src, stride)
    assert len(out) == n + 5
    assert byte_unshuffle(out) == src


def test_unshuffle_without_header_is_an_error():
    with pytest.raises(ArtifactError, match="BSHF"):
        byte_unshuffle(b"NOPE\x02abcdef")
    with pytest.raises(ArtifactError):
        byte_unshuffle(b"BSHF\x00abc")


def test_bad_stride():
    with pytest.raises(ValueError):
        byte_shuffle(b"abc", 0)
