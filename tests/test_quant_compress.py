"""Compressors: settings (zlib 9, lzma preset 6, brotli 11), round trips, codec names, errors."""
from __future__ import annotations

import lzma
import os
import zlib

import brotli
import pytest

from golf_core.errors import ArtifactError, GolfError
from golf_core.quant import COMPRESSORS, compress_bytes, decompress_bytes, get_compressor
from golf_core.quant.compress import codec_name, parse_codec

DATA = [b"", b"x", os.urandom(3000), b"abc" * 5000 + os.urandom(100)]


@pytest.mark.parametrize("name", ["zlib", "lzma", "brotli"])
@pytest.mark.parametrize("i", range(len(DATA)))
def test_round_trip(name, i):
    c = get_compressor(name)
    assert c.decompress(c.compress(DATA[i])) == DATA[i]


def test_settings_match_the_records():
    d = b"parameter golf " * 2000 + os.urandom(500)
    assert COMPRESSORS["zlib"].compress(d) == zlib.compress(d, 9)
    assert COMPRESSORS["lzma"].compress(d) == lzma.compress(d, preset=6)
    assert COMPRESSORS["brotli"].compress(d) == brotli.compress(d, quality=11)


@pytest.mark.parametrize("name", ["zlib", "lzma", "brotli"])
@pytest.mark.parametrize("shuffle", [0, 2, 4])
def test_codec_round_trip(name, shuffle):
    d = bytes(range(256)) * 40 + os.urandom(17)
    codec, blob = compress_bytes(d, name, shuffle)
    assert codec == (f"bshf{shuffle}+{name}" if shuffle else name)
    assert decompress_bytes(codec, blob) == d


def test_shuffled_codec_is_shuffle_then_compress():
    d = os.urandom(999)
    codec, blob = compress_bytes(d, "brotli", 2)
    assert brotli.decompress(blob) == b"BSHF\x02" + d[0::2] + d[1::2]


def test_errors():
    with pytest.raises(GolfError, match="unknown compressor 'zstd'"):
        get_compressor("zstd")
    with pytest.raises(ArtifactError, match="unknown compression codec"):
        decompress_bytes("zstd", b"")
    with pytest.raises(ArtifactError, match="unknown compression codec"):
        parse_codec("bshfx+zlib")
    with pytest.raises(ArtifactError, match="zlib payload does not decompress"):
        decompress_bytes("zlib", b"not zlib at all")
    with pytest.raises(ArtifactError, match="brotli payload does not decompress"):
        decompress_bytes("brotli", os.urandom(64))
    assert codec_name("lzma", 1) == "lzma"
