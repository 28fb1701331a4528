"""`golf data download` against a local fake Hub repository (no network)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from golf_core.data.download import download
from golf_core.data.shards import write_shard
from golf_core.errors import DataError, ShardError


def _entry(variant, files_train, files_val=1):
    vocab = int(variant[2:])
    return ({"name": f"fineweb10B_{variant}", "tokenizer_name": f"sp_bpe_{vocab}",
             "path": f"datasets/fineweb10B_{variant}", "vocab_size": vocab,
             "stats": {"files_train": files_train, "files_val": files_val}},
            {"name": f"sp_bpe_{vocab}", "kind": "sentencepiece_bpe", "vocab_size": vocab,
             "model_path": f"tokenizers/fineweb_{vocab}_bpe.model",
             "vocab_path": f"tokenizers/fineweb_{vocab}_bpe.vocab"})


class FakeHub:
    """A Hub dataset repository in a folder: hf_hub_download's signature, copying to a fake cache."""

    def __init__(self, root: Path, tokenizer: Path, prefix="datasets"):
        self.repo = root / "repo"
        self.cache = root / "cache"
        self.prefix = prefix
        self.calls = []
        self.tokenizer = tokenizer
        self.cache.mkdir(parents=True)

    def publish(self, variants: dict):
        datasets, tokenizers = [], []
        base = self.repo / self.prefix if self.prefix else self.repo
        for variant, (n_train, n_val) in variants.items():
            ds, tok = _entry(variant, n_train, n_val)
            datasets.append(ds)
            tokenizers.append(tok)
            d = base / "datasets" / ds["name"]
            d.mkdir(parents=True, exist_ok=True)
            rng = np.random.default_rng(len(variant))
            for i in range(n_val):
                write_shard(d / f"fineweb_val_{i:06d}.bin", rng.integers(0, 1024, 3000))
            for i in range(n_train):
                write_shard(d / f"fineweb_train_{i:06d}.bin", rng.integers(0, 1024, 5000 + i))
            t = base / "tokenizers"
            t.mkdir(parents=True, exist_ok=True)
            shutil.copy(self.tokenizer, t / Path(tok["model_path"]).name)
            (t / Path(tok["vocab_path"]).name).write_text("vocab\n")
        base.mkdir(parents=True, exist_ok=True)
        (base / "manifest.json").write_text(json.dumps({"version": "10B", "datasets": datasets,
                                                         "tokenizers": tokenizers}))

    def __call__(self, *, repo_id, filename, subfolder, repo_type):
        assert repo_type == "dataset"
        self.calls.append(f"{subfolder}/{filename}" if subfolder else filename)
        src = self.repo / (subfolder or "") / filename
        if not src.is_file():
            raise FileNotFoundError(f"404 {repo_id}/{subfolder}/{filename}")
        dst = self.cache / f"blob{len(self.calls)}"
        shutil.copy(src, dst)
        return str(dst)


@pytest.fixture
def hub(tmp_path, demo_data):
    h = FakeHub(tmp_path, demo_data.tokenizer_path)
    h.publish({"sp1024": (4, 1)})
    return h


def test_download_fetches_manifest_shards_and_tokenizer(tmp_path, hub):
    root = tmp_path / "data"
    logs = []
    paths = download("sp1024", 2, root, repo_id="me/fake", hub_download=hub, log=logs.append)
    assert hub.calls == [
        "datasets/manifest.json",
        "datasets/datasets/fineweb10B_sp1024/fineweb_val_000000.bin",
        "datasets/datasets/fineweb10B_sp1024/fineweb_train_000000.bin",
        "datasets/datasets/fineweb10B_sp1024/fineweb_train_000001.bin",
        "datasets/tokenizers/fineweb_1024_bpe.model",
        "datasets/tokenizers/fineweb_1024_bpe.vocab",
    ]
    ds = root / "datasets" / "fineweb10B_sp1024"
    assert paths.dataset_dir == ds and paths.name == "fineweb" and paths.vocab_size == 1024
    assert paths.tokenizer_path == root / "tokenizers" / "fineweb_1024_bpe.model"
    assert [p.name for p in paths.train_files] == ["fineweb_train_000000.bin", "fineweb_train_000001.bin"]
    assert (root / "manifest.json").is_file()
    for f in paths.train_files + paths.val_files:
        assert f.read_bytes() == (hub.repo / "datasets" / "datasets" / ds.name / f.name).read_bytes()
    # everything present: nothing fetched again
    hub.calls.clear()
    download("sp1024", 2, root, repo_id="me/fake", hub_download=hub)
    assert hub.calls == []
    # more shards: only the new ones
    download("sp1024", 4, root, repo_id="me/fake", hub_download=hub)
    assert hub.calls == [f"datasets/datasets/fineweb10B_sp1024/fineweb_train_00000{i}.bin" for i in (2, 3)]


def test_too_many_shards(tmp_path, hub):
    with pytest.raises(DataError, match="only has 4 training shards on me/fake, requested 5"):
        download("sp1024", 5, tmp_path / "data", repo_id="me/fake", hub_download=hub)


def test_stale_manifest_is_refetched(tmp_path, hub):
    root = tmp_path / "data"
    download("sp1024", 1, root, repo_id="me/fake", hub_download=hub)  # caches a manifest without sp8192
    hub.publish({"sp1024": (4, 1), "sp8192": (3, 1)})
    # the 8192 "tokenizer" is the 1024 demo one, so vocab verification must fail after the fetch
    hub.calls.clear()
    logs = []
    with pytest.raises(Exception, match="vocab size 1024 differs"):
        download("sp8192", 2, root, repo_id="me/fake", hub_download=hub, log=logs.append)
    assert hub.calls[0] == "datasets/manifest.json"
    assert any("stale manifest" in m and "fineweb10B_sp8192" in m and "re-fetching" in m for m in logs)
    assert "fineweb10B_sp8192" in (root / "manifest.json").read_text()
    assert (root / "datasets" / "fineweb10B_sp8192" / "fineweb_train_000001.bin").is_file()


def test_unknown_variant_lists_what_exists(tmp_path, hub):
    root = tmp_path / "data"
    with pytest.raises(DataError) as e:
        download("sp4096", 1, root, repo_id="me/fake", hub_download=hub)
    assert "fineweb10B_sp4096 not found" in str(e.value) and "fineweb10B_sp1024" in str(e.value)
    assert hub.calls == ["datasets/manifest.json"]  # fresh manifest: not fetched twice
    for bad in ("byte260", "gpt2", "sp"):
        with pytest.raises(DataError):
            download(bad, 1, root, hub_download=hub)


def test_skip_manifest_needs_a_manifest(tmp_path, hub):
    with pytest.raises(DataError, match="manifest.json is required"):
        download("sp1024", 1, tmp_path / "data", hub_download=hub, skip_manifest=True)


def test_broken_local_shard_is_refetched(tmp_path, hub):
    root = tmp_path / "data"
    paths = download("sp1024", 1, root, repo_id="me/fake", hub_download=hub)
    shard = paths.train_files[0]
    good = shard.read_bytes()
    shard.write_bytes(good[:-10])
    with pytest.raises(ShardError):
        from golf_core.data.shards import read_shard
        read_shard(shard)
    logs = []
    download("sp1024", 1, root, repo_id="me/fake", hub_download=hub, log=logs.append)
    assert shard.read_bytes() == good
    assert any("truncated" in m for m in logs)


def test_remote_prefix_and_env(tmp_path, demo_data, monkeypatch):
    h = FakeHub(tmp_path, demo_data.tokenizer_path, prefix="matched")
    h.publish({"sp1024": (2, 1)})
    monkeypatch.setenv("MATCHED_FINEWEB_REMOTE_ROOT_PREFIX", "matched")
    paths = download("sp1024", 1, tmp_path / "d", hub_download=h)
    assert h.calls[0] == "matched/manifest.json"
    assert paths.train_files == [tmp_path / "d" / "datasets" / "fineweb10B_sp1024" / "fineweb_train_000000.bin"]


def test_cli_download_uses_hf_hub_download(tmp_path, hub, monkeypatch, capsys):
    import huggingface_hub

    from golf_core.cli import main

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hub)
    rc = main(["data", "download", "--variant", "sp1024", "--train-shards", "3", "--out", str(tmp_path / "x"),
               "--repo-id", "me/fake"])
    assert rc == 0
    assert "3 train, 1 val" in capsys.readouterr().out
    rc = main(["data", "download", "--variant", "sp1024", "--train-shards", "9", "--out", str(tmp_path / "x")])
    assert rc == 2
    assert capsys.readouterr().err.startswith("golf: error: sp1024 only has 4 training shards")
