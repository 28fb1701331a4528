"""artifact.bin: round trip, and one clear ArtifactError for every kind of damage, with nothing
executed (no pickle on the read path; a pickle-shaped payload is refused, not unpickled)."""
from __future__ import annotations

import ast
import hashlib
import os
import pickle
import struct
import sys
import zlib
from pathlib import Path

import pytest
import torch

import golf_core.quant as gq
from golf_core.errors import ArtifactError
from golf_core.quant import (Artifact, build_artifact, decode_artifact, dequantize, pack_artifact,
                             quantize_state_dict_int8, read_artifact, unpack_artifact, write_artifact)

PLUGINS = [{"name": "qk-gain", "version": "0.1.0", "options": {"init": 5.0}}]
MODEL = {"num_layers": 2, "model_dim": 64, "vocab_size": 128}


@pytest.fixture(scope="module")
def state_dict():
    g = torch.Generator().manual_seed(3)
    return {"tok_emb.weight": torch.randn(1100, 64, generator=g) * 0.1,
            "blocks.0.attn_scale": torch.ones(64), "blocks.0.mlp.fc.weight": torch.randn(128, 600, generator=g)}


@pytest.fixture(scope="module")
def blob(state_dict):
    qm = quantize_state_dict_int8(state_dict)
    return pack_artifact(build_artifact(qm, "brotli", True, model=MODEL, plugins=PLUGINS, extra={"golf": "0.1.0"}))


def test_round_trip_through_a_file(tmp_path, state_dict, blob):
    path = tmp_path / "artifact.bin"
    qm = quantize_state_dict_int8(state_dict)
    n = write_artifact(path, build_artifact(qm, "brotli", True, model=MODEL, plugins=PLUGINS, extra={"golf": "0.1.0"}))
    assert n == path.stat().st_size == len(blob)
    assert path.read_bytes() == blob  # deterministic
    art = read_artifact(path)
    assert art.codec == "bshf2+brotli" and art.model == MODEL and art.plugins == PLUGINS
    assert art.extra == {"golf": "0.1.0"}
    out = dequantize(decode_artifact(art), template=state_dict)
    ref = dequantize(qm, template=state_dict)
    for k in state_dict:
        assert torch.equal(out[k], ref[k])


def test_layout(blob):
    magic, version, hlen, plen = struct.unpack_from("<8sIIQ", blob)
    assert magic == b"GOLFART\x00" and version == 1
    assert len(blob) == 24 + hlen + plen + 32
    assert hashlib.sha256(blob[:-32]).digest() == blob[-32:]


@pytest.mark.parametrize("cut", [0, 5, 8, 23, 40, 100, -33, -1])
def test_truncated(blob, cut):
    data = blob[:cut]
    with pytest.raises(ArtifactError, match=r"^artifact\.bin is truncated"):
        unpack_artifact(data, source="artifact.bin")


@pytest.mark.parametrize("where", ["header", "payload", "middle", "checksum", "lengths"])
def test_flipped_byte(blob, where):
    hlen = struct.unpack_from("<I", blob, 12)[0]
    pos = {"header": 24 + hlen // 2, "payload": 24 + hlen + 3, "middle": len(blob) // 2,
           "checksum": len(blob) - 5, "lengths": 17}[where]
    data = bytearray(blob)
    data[pos] ^= 0x01
    with pytest.raises(ArtifactError, match=r"^artifact\.bin is (corrupt|truncated)") as e:
        unpack_artifact(bytes(data), source="artifact.bin")
    assert "\n" not in str(e.value)
    if where != "lengths":
        assert "checksum" in str(e.value)


def test_unknown_version(blob):
    data = blob[:8] + struct.pack("<I", 2) + blob[12:]
    with pytest.raises(ArtifactError, match="artifact format version 2; this golf reads version 1"):
        unpack_artifact(data, source="artifact.bin")


def test_bad_magic(blob):
    with pytest.raises(ArtifactError, match="is not a golf artifact"):
        unpack_artifact(b"PK\x03\x04" + blob[4:], source="x.bin")


def test_missing_file(tmp_path):
    with pytest.raises(ArtifactError, match="cannot read artifact"):
        read_artifact(tmp_path / "nope.bin")


_EVIL_FLAG = "GOLF_TEST_PICKLE_EXECUTED"


class _Evil:
    def __reduce__(self):
        return (exec, (f"import os; os.environ[{_EVIL_FLAG!r}] = '1'",))


def test_pickle_payload_is_refused_not_unpickled(tmp_path, monkeypatch):
    """A well-formed container whose payload is a compressed pickle with a code-running
    __reduce__: reading fails cleanly and the code never runs; pickle and torch.load are never
    called on the read path."""
    os.environ.pop(_EVIL_FLAG, None)
    evil = pickle.dumps({"w": _Evil()})
    for codec, payload in (("zlib", zlib.compress(evil)), ("zlib", zlib.compress(b"PK\x03\x04" + evil))):
        path = tmp_path / "evil.bin"
        write_artifact(path, Artifact(codec=codec, payload=payload, model={}, plugins=[{"name": "os", "version": "0", "options": {}}]))

        def boom(*a, **k):
            raise AssertionError("the read path called a deserializer that can run code")

        monkeypatch.setattr(pickle, "loads", boom)
        monkeypatch.setattr(pickle, "load", boom)
        monkeypatch.setattr(pickle, "Unpickler", boom)
        monkeypatch.setattr(torch, "load", boom)
        art = read_artifact(path)
        with pytest.raises(ArtifactError, match="not a golf quantized model"):
            decode_artifact(art)
        monkeypatch.undo()
    assert _EVIL_FLAG not in os.environ
    # sanity: the same payload really does run code when unpickled
    pickle.loads(evil)
    assert os.environ.pop(_EVIL_FLAG) == "1"


def test_quant_source_has_no_code_running_deserializer():
    """Static guard: golf_core.quant never imports pickle-like modules or calls exec/eval/torch.load."""
    root = Path(gq.__file__).parent
    banned_modules = {"pickle", "cPickle", "dill", "marshal", "shelve", "joblib", "cloudpickle"}
    for f in root.rglob("*.py"):
        tree = ast.parse(f.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not {a.name.split(".")[0] for a in node.names} & banned_modules, f
            if isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] not in banned_modules, f
            if isinstance(node, ast.Call):
                fn = node.func
                if isinstance(fn, ast.Name):
                    assert fn.id not in {"exec", "eval", "compile", "__import__"}, f"{f}: {fn.id}"
                if isinstance(fn, ast.Attribute):
                    assert fn.attr not in {"load", "loads", "import_module"} or \
                        not (isinstance(fn.value, ast.Name) and fn.value.id in {"torch", "pickle", "importlib"}), f"{f}: {fn.attr}"


def test_header_plugins_are_not_imported(blob):
    name = "golf_plugin_that_must_not_be_imported"
    data = pack_artifact(Artifact(codec="zlib", payload=zlib.compress(b""), plugins=[{"name": name, "version": "1", "options": {}}]))
    art = unpack_artifact(data)
    assert art.plugins[0]["name"] == name
    assert not any(name in m for m in sys.modules)


def test_unjsonable_header_is_refused():
    with pytest.raises(ArtifactError, match="not JSON-able"):
        pack_artifact(Artifact(codec="zlib", payload=b"", model={"x": float("nan")}))
