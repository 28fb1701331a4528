"""Per-group compression: the L1 order against brute force, the stream layout rebuilt by hand,
exact round trips for every backend, and one-line errors when lrzip is missing."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from golf_core.api import GolfError, QuantizedModel, serialize_quantized
from golf_pergroup import backends, similarity_order
from golf_pergroup.backends import backend_decompress, check_backend
from golf_pergroup.codec import GROUP_ORDER, SIMSORT, pack_pergroup, unpack_pergroup, unpack_streams
from golf_pergroup.plugin import PerGroupOptions, golf_compress, golf_decompress


def brute_order(m: np.ndarray) -> list[int]:
    """Nearest unused row in L1 from the last one, lowest index on ties, by plain Python loops."""
    rows = [list(map(int, r)) for r in m]
    order, used = [0], {0}
    while len(order) < len(rows):
        last = rows[order[-1]]
        best, best_d = None, None
        for i, r in enumerate(rows):
            if i in used:
                continue
            d = sum(abs(a - b) for a, b in zip(r, last))
            if best_d is None or d < best_d:
                best, best_d = i, d
        order.append(best)
        used.add(best)
    return order


@pytest.mark.parametrize("seed", [0, 1])
def test_similarity_order_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    m = rng.integers(-3, 4, size=(40, 7)).astype(np.int8)
    m[5] = m[17]  # exact duplicates and ties
    assert similarity_order(m).tolist() == brute_order(m)


def model(seed=0, layers=2) -> QuantizedModel:
    g = torch.Generator().manual_seed(seed)
    qm = QuantizedModel()

    def codes(r, c, cr=31):
        return torch.clamp(torch.round(torch.randn(r, c, generator=g) * cr / 4), -cr, cr).to(torch.int8)

    qm.add("tok_emb.weight", {"codec": "per_row", "dtype": "float32"}, q=codes(64, 16, 63), scale=torch.rand(64).half())
    for i in range(layers):
        for n, (r, c) in {"attn.c_q.weight": (16, 16), "attn.c_k.weight": (8, 16), "attn.c_v.weight": (8, 16),
                          "attn.proj.weight": (16, 16), "mlp.fc.weight": (32, 16), "mlp.proj.weight": (16, 32)}.items():
            qm.add(f"blocks.{i}.{n}", {"codec": "per_row", "dtype": "float32"}, q=codes(r, c), scale=torch.rand(r).half())
        qm.add(f"blocks.{i}.attn.attn_gate_w", {"codec": "per_row", "dtype": "float32"}, q=codes(4, 12, 127),
               scale=torch.rand(4).half())
        qm.add(f"blocks.{i}.attn_scale", {"codec": "raw", "dtype": "float32"}, data=torch.rand(16).half())
    qm.add("blocks.0.mlp.fc.weight_lqer_dummy", {"codec": "raw", "dtype": "int8"}, data=codes(4, 8, 7))
    return qm


@pytest.mark.parametrize("backend", ["zpaq", "brotli", "lzma", "lrzip"])
def test_round_trip_is_exact(backend):
    if backend == "lrzip" and shutil.which("lrzip") is None:
        pytest.skip("lrzip binary not installed")
    data = serialize_quantized(model())
    blob = pack_pergroup(data, backend)
    assert unpack_pergroup(blob, backend) == data


def test_group_streams_hold_the_codes_as_defined():
    qm = model(seed=3, layers=3)
    streams = unpack_streams(pack_pergroup(serialize_quantized(qm), "lzma"))
    assert len(streams) == len(GROUP_ORDER) + 2
    perms = []
    for g, stream in zip(GROUP_ORDER, streams):
        keys = ["tok_emb.weight.q"] if g.startswith("_") else [f"blocks.{i}.{g}" for i in range(3)]
        want = b""
        for k in keys:
            a = qm.tensors[k].numpy()
            if g in SIMSORT:
                o = brute_order(a)
                perms.append(np.array(o, dtype=np.uint16).tobytes())
                a = a[o]
            want += np.ascontiguousarray(a.T).tobytes()  # column-major
        assert backend_decompress("lzma", stream) == want, g
    import brotli
    assert brotli.decompress(streams[-1]) == b"".join(perms)


def test_hooks_and_missing_lrzip(monkeypatch):
    from types import SimpleNamespace

    from golf_core.train.testing import tiny_recipe

    ctx = SimpleNamespace(recipe=tiny_recipe(vocab_size=64, model={"model_dim": 16, "num_heads": 2, "num_kv_heads": 1}))
    data = serialize_quantized(model(seed=5))
    opts = PerGroupOptions(backend="brotli")
    codec, blob = golf_compress(data=data, opts=opts)
    assert codec == "pergroup+brotli" and golf_decompress(codec=codec, data=blob, ctx=ctx) == data
    monkeypatch.setattr(backends.shutil, "which", lambda name: None)
    with pytest.raises(ValueError, match="lrzip binary, which is not on PATH"):
        PerGroupOptions(backend="lrzip")
    with pytest.raises(GolfError, match="apt-get install lrzip"):
        check_backend("lrzip")
    from golf_core.api import ArtifactError
    with pytest.raises(ArtifactError, match="lrzip binary"):
        golf_decompress(codec="pergroup+lrzip", data=blob, ctx=ctx)
    with pytest.raises(ArtifactError, match="cannot decode codec"):
        golf_decompress(codec="pergroup+nope", data=blob, ctx=ctx)


def test_untrusted_payloads_fail_in_one_line():
    from golf_core.api import ArtifactError
    from golf_pergroup.codec import pack_streams

    data = serialize_quantized(model(seed=6))
    blob = pack_pergroup(data, "brotli")
    streams = unpack_streams(blob)
    with pytest.raises(ArtifactError, match="ceiling|expands past"):  # more than the model can need
        unpack_pergroup(blob, "brotli", max_bytes=1000)
    swapped = pack_streams([streams[1], streams[0], *streams[2:]])  # tok_emb's stream holds c_k's codes
    with pytest.raises(ArtifactError, match="decompresses to .* its manifest says"):
        unpack_pergroup(swapped, "brotli")
    with pytest.raises(ArtifactError, match="streams add up"):
        unpack_pergroup(blob[:-3], "brotli")
    assert unpack_pergroup(blob, "brotli", max_bytes=len(data) * 2) == data
