"""QuantizedModel <-> bytes: JSON header + raw little-endian tensors, deterministic, no pickle."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch

from golf_core.errors import ArtifactError
from golf_core.quant import QuantizedModel, deserialize_quantized, serialize_quantized


def sample() -> QuantizedModel:
    g = torch.Generator().manual_seed(1)
    qm = QuantizedModel()
    qm.add("a.weight", {"codec": "per_row", "dtype": "bfloat16", "bits": 6},
           q=torch.randint(-31, 32, (5, 7), generator=g, dtype=torch.int8),
           scale=torch.rand(5, generator=g).half())
    qm.add("b", {"codec": "raw", "dtype": "float32"}, data=torch.randn(3, 2, 2, generator=g))
    qm.add("c", {"codec": "raw", "dtype": "bfloat16"}, data=torch.randn(4, generator=g).bfloat16())
    qm.add("d", {"codec": "raw", "dtype": "int64"}, data=torch.tensor(12345678901))
    qm.add("e", {"codec": "raw", "dtype": "bool"}, data=torch.tensor([True, False, True]))
    qm.add("f", {"codec": "raw", "dtype": "float64"}, data=torch.empty(0, 3, dtype=torch.float64))
    qm.add("g", {"codec": "raw", "dtype": "uint8"}, data=torch.arange(5, dtype=torch.uint8))
    qm.add("h", {"codec": "raw", "dtype": "int32"}, data=torch.tensor([-1, 2**31 - 1], dtype=torch.int32))
    qm.add("i", {"codec": "raw", "dtype": "int16"}, data=torch.tensor([-300, 300], dtype=torch.int16))
    qm.meta["extra"] = {"k": 12.85, "note": "ünïcode"}
    return qm


def test_round_trip_all_dtypes():
    qm = sample()
    back = deserialize_quantized(serialize_quantized(qm))
    assert back.meta == qm.meta
    assert list(back.tensors) == list(qm.tensors)
    for k, t in qm.tensors.items():
        assert back.tensors[k].dtype == t.dtype and back.tensors[k].shape == t.shape
        assert torch.equal(back.tensors[k], t), k


def test_deterministic():
    assert serialize_quantized(sample()) == serialize_quantized(sample())


def test_layout_is_json_then_little_endian_bytes():
    qm = QuantizedModel()
    qm.add("w", {"codec": "raw", "dtype": "float32"}, data=torch.tensor([1.0, -2.0]))
    qm.add("x", {"codec": "raw", "dtype": "int16"}, data=torch.tensor([258], dtype=torch.int16))
    data = serialize_quantized(qm)
    magic, version, hlen = struct.unpack_from("<6sHQ", data)
    assert magic == b"GOLFQM" and version == 1
    header = json.loads(data[16:16 + hlen])
    assert header["tensors"] == [["w", "float32", [2], 8], ["x", "int16", [1], 2]]
    body = data[16 + hlen:]
    assert body == struct.pack("<ff", 1.0, -2.0) + struct.pack("<h", 258)
    assert np.frombuffer(body[:8], "<f4").tolist() == [1.0, -2.0]


def test_errors():
    good = serialize_quantized(sample())
    with pytest.raises(ArtifactError, match="truncated"):
        deserialize_quantized(good[:10])
    with pytest.raises(ArtifactError, match="not a golf quantized model"):
        deserialize_quantized(b"PK\x03\x04" + good[4:])
    with pytest.raises(ArtifactError, match="version 7"):
        deserialize_quantized(good[:6] + struct.pack("<H", 7) + good[8:])
    with pytest.raises(ArtifactError, match="do not fit"):
        deserialize_quantized(good[:-1])
    with pytest.raises(ArtifactError, match="trailing"):
        deserialize_quantized(good + b"\0")
    with pytest.raises(ArtifactError, match="header"):
        deserialize_quantized(good[:16] + b"X" + good[17:])


def test_unsupported_dtype_refused():
    qm = QuantizedModel(tensors={"z": torch.zeros(2, dtype=torch.complex64)},
                        meta={"format": "golf-quant/1", "entries": {}})
    with pytest.raises(ArtifactError, match="cannot be serialized"):
        serialize_quantized(qm)
