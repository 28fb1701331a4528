"""Shard format bit for bit (pg_core.md §2.1) and one clear error per broken shard."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from golf_core.data.shards import num_tokens, read_shard, write_shard
from golf_core.errors import GolfError, ShardError


def _reference_bytes(tokens) -> bytes:
    """The challenge's layout written by hand: 256 little-endian int32, then uint16 tokens."""
    header = [20240520, 1, len(tokens)] + [0] * 253
    return struct.pack("<256i", *header) + struct.pack(f"<{len(tokens)}H", *tokens)


def test_write_is_bit_for_bit(tmp_path):
    tokens = [1, 0, 65535, 7, 1024, 300, 2, 1]
    path = write_shard(tmp_path / "fineweb_train_000000.bin", np.array(tokens, dtype=np.int64))
    assert path.read_bytes() == _reference_bytes(tokens)


def test_read_reference_file(tmp_path):
    tokens = list(range(0, 60000, 7))
    path = tmp_path / "s.bin"
    path.write_bytes(_reference_bytes(tokens))
    got = read_shard(path)
    assert isinstance(got, np.memmap)
    assert got.dtype == np.uint16
    assert got.tolist() == tokens
    assert num_tokens(path) == len(tokens)


def test_roundtrip_empty_and_uint16(tmp_path):
    p = write_shard(tmp_path / "e.bin", [])
    assert p.stat().st_size == 1024
    assert read_shard(p).shape == (0,)
    arr = np.array([5, 6, 7], dtype=np.uint16)
    assert read_shard(write_shard(tmp_path / "u.bin", arr)).tolist() == [5, 6, 7]


@pytest.mark.parametrize("bad", [[-1], [65536], [1.5]])
def test_writer_refuses_ids_outside_uint16(tmp_path, bad):
    with pytest.raises(ShardError, match="x.bin"):
        write_shard(tmp_path / "x.bin", np.array(bad))


def _one_line(exc: GolfError) -> str:
    msg = str(exc)
    assert "\n" not in msg
    return msg


def test_truncated_shard(tmp_path):
    path = tmp_path / "fineweb_val_000000.bin"
    path.write_bytes(_reference_bytes(list(range(100)))[:-3])
    with pytest.raises(ShardError) as e:
        read_shard(path)
    msg = _one_line(e.value)
    assert str(path) in msg and "truncated" in msg


def test_shorter_than_header(tmp_path):
    path = tmp_path / "tiny.bin"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(ShardError, match="truncated") as e:
        num_tokens(path)
    assert str(path) in _one_line(e.value)


def test_wrong_magic(tmp_path):
    data = bytearray(_reference_bytes([1, 2, 3]))
    data[0:4] = struct.pack("<i", 20240521)
    path = tmp_path / "magic.bin"
    path.write_bytes(bytes(data))
    with pytest.raises(ShardError) as e:
        read_shard(path)
    msg = _one_line(e.value)
    assert str(path) in msg and "magic" in msg and "20240521" in msg


def test_wrong_version(tmp_path):
    data = bytearray(_reference_bytes([1, 2, 3]))
    data[4:8] = struct.pack("<i", 2)
    path = tmp_path / "version.bin"
    path.write_bytes(bytes(data))
    with pytest.raises(ShardError, match="version 2") as e:
        read_shard(path)
    assert str(path) in _one_line(e.value)


def test_trailing_bytes(tmp_path):
    path = tmp_path / "long.bin"
    path.write_bytes(_reference_bytes([1, 2, 3]) + b"\x00\x00")
    with pytest.raises(ShardError, match="trailing") as e:
        read_shard(path)
    assert str(path) in _one_line(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(ShardError, match="does not exist"):
        read_shard(tmp_path / "nope.bin")
