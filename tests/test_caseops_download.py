"""`golf data download` of a CaseOps variant against a local fake Hub repository laid out as
PR #1729's export writes it (dataset entry with val_bytes_glob; tokenizer entries named by path)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from golf_core.config import DataSection
from golf_core.data import download as dl
from golf_core.data.paths import CASEOPS_SUFFIX, resolve_data
from golf_core.data.shards import read_shard, write_shard
from golf_core.errors import DataError
from tests.test_data_download import FakeHub

VARIANT = f"sp1024_{CASEOPS_SUFFIX}"   # the published one is sp8192; the demo's tokenizer is 1024


class CaseOpsHub(FakeHub):
    """hf_hub_download over a folder holding a CaseOps export of the demo dataset."""

    def __init__(self, root: Path, data, sidecars: bool = True):
        super().__init__(root, data.tokenizer_path)
        base = self.repo / "datasets"
        ds = base / "datasets" / f"fineweb10B_{VARIANT}"
        ds.mkdir(parents=True)
        for f in data.val_files + data.train_files[:2] + (data.val_byte_files if sidecars else []):
            shutil.copy(f, ds / f.name)
        (base / "tokenizers").mkdir()
        model = f"tokenizers/fineweb_1024_bpe_{CASEOPS_SUFFIX}.model"
        shutil.copy(data.tokenizer_path, base / model)
        entry = {"name": f"fineweb10B_{VARIANT}", "tokenizer_name": f"sp_bpe_1024_{CASEOPS_SUFFIX}",
                 "stats": {"files_train": 2, "files_val": len(data.val_files)}}
        if sidecars:
            entry["val_bytes_glob"] = f"datasets/fineweb10B_{VARIANT}/fineweb_val_bytes_*.bin"
        tokenizers = [{"model_path": "tokenizers/fineweb_1024_bpe.model"},
                      {"model_path": model, "text_transform": "lossless_caps_caseops_v1",
                       "reserve_text_transform_controls": True}]
        (base / "manifest.json").write_text(json.dumps({"datasets": [entry], "tokenizers": tokenizers}))


def test_download_fetches_the_byte_sidecars_and_a_recipe_finds_them(tmp_path, caseops_demo_data):
    hub = CaseOpsHub(tmp_path, caseops_demo_data)
    root = tmp_path / "data"
    paths = dl.download(VARIANT, 1, root, repo_id="me/caseops", hub_download=hub)
    assert [p.name for p in paths.val_byte_files] == ["fineweb_val_bytes_000000.bin"]
    assert "datasets/datasets/fineweb10B_" + VARIANT + "/fineweb_val_bytes_000000.bin" in hub.calls
    assert paths.tokenizer_path.name == f"fineweb_1024_bpe_{CASEOPS_SUFFIX}.model"
    assert read_shard(paths.val_byte_files[0]).tolist() == read_shard(caseops_demo_data.val_byte_files[0]).tolist()
    resolved = resolve_data(DataSection(source="fineweb", variant="caseops", vocab_size=1024, root=str(root),
                                        train_shards=1))
    assert resolved.val_byte_files == paths.val_byte_files and resolved.tokenizer_path == paths.tokenizer_path


def test_a_caseops_variant_without_sidecars_is_refused(tmp_path, caseops_demo_data):
    hub = CaseOpsHub(tmp_path, caseops_demo_data, sidecars=False)
    with pytest.raises(DataError, match="no val_bytes_glob: a CaseOps variant needs its byte sidecars"):
        dl.download(VARIANT, 1, tmp_path / "data", repo_id="me/caseops", hub_download=hub)


def test_a_short_sidecar_is_refused(tmp_path, caseops_demo_data):
    hub = CaseOpsHub(tmp_path, caseops_demo_data)
    f = hub.repo / "datasets" / "datasets" / f"fineweb10B_{VARIANT}" / "fineweb_val_bytes_000000.bin"
    write_shard(f, read_shard(f)[:-1].copy())
    with pytest.raises(DataError, match="byte counts for the .* tokens of fineweb_val_000000.bin"):
        dl.download(VARIANT, 1, tmp_path / "data", repo_id="me/caseops", hub_download=hub)


def test_the_caseops_alias_names_pr1729s_variant_and_repository(tmp_path, monkeypatch):
    monkeypatch.delenv(dl.ENV_REPO_ID, raising=False)
    asked = []

    def hub(*, repo_id, filename, subfolder, repo_type):
        asked.append((repo_id, subfolder, filename))
        raise FileNotFoundError("offline")

    assert dl.dataset_dir_for_variant("caseops") == "fineweb10B_sp8192_lossless_caps_caseops_v1_reserved"
    with pytest.raises(DataError, match="could not download datasets/manifest.json from romeerp/parameter-golf-caseops-v1"):
        dl.download("caseops", 1, tmp_path, hub_download=hub)
    assert asked == [("romeerp/parameter-golf-caseops-v1", "datasets", "manifest.json")]


def test_missing_caseops_data_names_the_download_command(tmp_path):
    with pytest.raises(DataError, match=r"golf data download --variant sp8192_lossless_caps_caseops_v1_reserved "
                                        r"--train-shards 80"):
        resolve_data(DataSection(source="fineweb", variant="caseops", vocab_size=8192, root=str(tmp_path)))
