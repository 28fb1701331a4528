"""Dataset builds in the challenge's layout, caching, and resolve_data."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from golf_core.config import DataSection
from golf_core.data import demo_corpus as dc
from golf_core.data.build import build_dataset, cached_dataset
from golf_core.data.paths import DataPaths, download_command, resolve_data
from golf_core.data.shards import read_shard
from golf_core.data.tokenizer import load_tokenizer
from golf_core.errors import DataError, TokenizerError


def _stream(files) -> np.ndarray:
    return np.concatenate([np.asarray(read_shard(f), dtype=np.int64) for f in files])


def test_demo_layout_and_contents(demo_data):
    root = demo_data.dataset_dir.parent.parent
    assert demo_data.dataset_dir == root / "datasets" / "demo_sp1024"
    assert demo_data.tokenizer_path == root / "tokenizers" / "demo_1024_bpe.model"
    assert demo_data.tokenizer_path.with_suffix(".vocab").is_file()
    assert [p.name for p in demo_data.val_files] == ["fineweb_val_000000.bin"]
    assert [p.name for p in demo_data.train_files] == [f"fineweb_train_{i:06d}.bin" for i in range(len(demo_data.train_files))]
    assert len(demo_data.train_files) >= 3

    manifest = json.loads((demo_data.dataset_dir / "manifest.json").read_text())
    docs = dc.demo_documents()
    assert manifest["corpus_sha256"] == dc.corpus_sha256(docs)
    assert manifest["vocab_size"] == 1024 and manifest["num_val_docs"] == dc.NUM_VAL_DOCS

    # Independent re-export: [BOS] + encode(raw text) per document, first NUM_VAL_DOCS are val.
    sp = load_tokenizer(demo_data.tokenizer_path, 1024)
    enc = sp.encode(docs, out_type=int)
    val_ref = np.concatenate([[1] + e for e in enc[: dc.NUM_VAL_DOCS]])
    train_ref = np.concatenate([[1] + e for e in enc[dc.NUM_VAL_DOCS:]])
    assert np.array_equal(_stream(demo_data.val_files), val_ref)
    assert np.array_equal(_stream(demo_data.train_files), train_ref)
    assert all(read_shard(f).shape[0] == 2**18 for f in demo_data.train_files[:-1])
    assert len(val_ref) >= 100_000
    st = manifest["stats"]
    assert st["tokens_val"] == len(val_ref) and st["tokens_train"] == len(train_ref)
    assert st["docs_val"] == dc.NUM_VAL_DOCS and st["docs_train"] == len(docs) - dc.NUM_VAL_DOCS


def test_demo_is_cached(demo_data):
    root = demo_data.dataset_dir.parent.parent
    before = {p: p.stat().st_mtime_ns for p in demo_data.train_files + demo_data.val_files}
    again = build_dataset(root, 1024)
    assert again == demo_data
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert cached_dataset(root, 1024) == demo_data


@pytest.fixture(scope="module")
def custom_source(tmp_path_factory):
    d = tmp_path_factory.mktemp("src")
    docs = dc.demo_documents()[:400]
    with open(d / "a.jsonl", "w") as f:
        for doc in docs[:360]:
            f.write(json.dumps({"text": doc}) + "\n")
    for i, doc in enumerate(docs[360:]):
        (d / f"b{i:02d}.txt").write_text(doc)
    return d, docs


def test_custom_source_build_and_rebuild(tmp_path, custom_source):
    src, docs = custom_source
    files = [src / "a.jsonl"] + sorted(src.glob("b*.txt"))
    logs = []
    paths = build_dataset(tmp_path, 384, [str(f) for f in files], name="mine", num_val_docs=20,
                          shard_tokens=20_000, log=logs.append)
    assert paths.dataset_dir == tmp_path / "datasets" / "mine_sp384"
    assert paths.tokenizer_path == tmp_path / "tokenizers" / "mine_384_bpe.model"
    assert logs and len(paths.train_files) > 3
    sp = load_tokenizer(paths.tokenizer_path, 384)
    enc = sp.encode(docs, out_type=int)
    assert np.array_equal(_stream(paths.val_files), np.concatenate([[1] + e for e in enc[:20]]))
    assert np.array_equal(_stream(paths.train_files), np.concatenate([[1] + e for e in enc[20:]]))

    # cached: no log, no rebuild
    logs.clear()
    assert build_dataset(tmp_path, 384, [str(f) for f in files], name="mine", num_val_docs=20,
                         shard_tokens=20_000, log=logs.append) == paths
    assert logs == []
    # a touched but unchanged source is still cached (same corpus hash)
    os.utime(files[-1], ns=(1, 1))
    assert build_dataset(tmp_path, 384, [str(f) for f in files], name="mine", num_val_docs=20,
                         shard_tokens=20_000, log=logs.append) == paths
    assert logs == []
    # a changed setting rebuilds
    again = build_dataset(tmp_path, 384, [str(f) for f in files], name="mine", num_val_docs=30,
                          shard_tokens=20_000, log=logs.append)
    assert logs and again.dataset_dir == paths.dataset_dir
    assert np.array_equal(_stream(again.val_files), np.concatenate([[1] + e for e in enc[:30]]))
    # a changed document rebuilds
    logs.clear()
    files[-1].write_text(docs[-1] + " And one more sentence.")
    build_dataset(tmp_path, 384, [str(f) for f in files], name="mine", num_val_docs=30,
                  shard_tokens=20_000, log=logs.append)
    assert logs
    # a missing shard is noticed
    again.train_files[0].unlink()
    assert cached_dataset(tmp_path, 384, [str(f) for f in files], name="mine", num_val_docs=30,
                          shard_tokens=20_000) is None


def test_folder_source_and_errors(tmp_path, custom_source):
    src, _ = custom_source
    paths = build_dataset(tmp_path, 400, str(src), shard_tokens=10**6)
    assert paths.name == "custom" and paths.dataset_dir.name == "custom_sp400"
    assert len(paths.val_files) == 1 and len(paths.train_files) == 1
    with pytest.raises(TokenizerError, match="required_chars"):  # 261 < 4 + 256 + alphabet
        build_dataset(tmp_path, 300, str(src), name="small")
    with pytest.raises(DataError, match="does not exist"):
        build_dataset(tmp_path, 300, [str(tmp_path / "missing.txt")])
    with pytest.raises(DataError, match="too small"):
        build_dataset(tmp_path, 4000, [str(src / "b00.txt"), str(src / "b01.txt")], name="tiny")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"txt": "x"}\n')
    with pytest.raises(DataError, match="bad.jsonl:1"):
        build_dataset(tmp_path, 400, [str(bad)], name="bad")


def test_resolve_demo_uses_cache_and_build_missing(demo_data, tmp_path):
    root = demo_data.dataset_dir.parent.parent
    got = resolve_data(DataSection(source="demo", vocab_size=1024, root=str(root)))
    assert got == demo_data
    limited = resolve_data(DataSection(source="demo", vocab_size=1024, root=str(root), train_shards=2))
    assert limited.train_files == demo_data.train_files[:2]
    with pytest.raises(DataError) as e:
        resolve_data(DataSection(source="demo", vocab_size=1024, root=str(tmp_path)), build_missing=False)
    assert f"golf data build --vocab 1024 --out {tmp_path}" in str(e.value)


def test_resolve_explicit_dataset_dir(demo_data):
    got = resolve_data(DataSection(dataset_dir=str(demo_data.dataset_dir), vocab_size=1024))
    assert got.tokenizer_path.resolve() == demo_data.tokenizer_path.resolve()
    assert got.train_files == demo_data.train_files and got.val_files == demo_data.val_files
    with pytest.raises(TokenizerError, match="1024"):
        DataPaths(got.dataset_dir, got.tokenizer_path, got.train_files, got.val_files, "x", 2048).byte_luts()


def test_missing_fineweb_names_the_download_command(tmp_path, monkeypatch):
    monkeypatch.delenv("GOLF_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as e:
        resolve_data(DataSection(source="fineweb", vocab_size=8192, train_shards=3))
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.endswith("golf data download --variant sp8192 --train-shards 3")
    with pytest.raises(DataError) as e:
        resolve_data(DataSection(source="fineweb", vocab_size=1024, root=str(tmp_path / "elsewhere")))
    assert str(e.value).endswith(f"golf data download --variant sp1024 --train-shards 80 --out {tmp_path / 'elsewhere'}")
    assert download_command(1024, 5) == "golf data download --variant sp1024 --train-shards 5"


def test_fineweb_layout_resolves(tmp_path, demo_data):
    """A FineWeb-shaped folder (as `golf data download` leaves it) resolves with its train_shards."""
    ds = tmp_path / "datasets" / "fineweb10B_sp1024"
    ds.mkdir(parents=True)
    (tmp_path / "tokenizers").mkdir()
    (tmp_path / "tokenizers" / "fineweb_1024_bpe.model").write_bytes(demo_data.tokenizer_path.read_bytes())
    for f in demo_data.val_files + demo_data.train_files:
        (ds / f.name).write_bytes(f.read_bytes())
    got = resolve_data(DataSection(source="fineweb", vocab_size=1024, root=str(tmp_path), train_shards=2))
    assert [p.name for p in got.train_files] == ["fineweb_train_000000.bin", "fineweb_train_000001.bin"]
    assert got.name == "fineweb" and got.byte_luts().size == 1024
    with pytest.raises(DataError, match="--train-shards 9"):
        resolve_data(DataSection(source="fineweb", vocab_size=1024, root=str(tmp_path), train_shards=9))
