"""Issue 16 (2): every input a run reads is checked before training, with one line naming the
file; manifest.json records the data."""
from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

from golf_core.cli import main
from golf_core.data.preflight import data_record, preflight_eval, preflight_run
from golf_core.data.shards import write_shard
from golf_core.errors import DataError
from golf_core.recipe import load_recipe


@pytest.fixture
def data_copy(demo_data, tmp_path):
    """A private copy of the demo dataset and its tokenizer, safe to damage."""
    ds = tmp_path / "ds"
    shutil.copytree(demo_data.dataset_dir, ds)
    tok = tmp_path / "tok.model"
    shutil.copy(demo_data.tokenizer_path, tok)
    return ds, tok


def _recipe(ds, tok):
    return load_recipe("demo", tiny=True, overrides=[f"data.dataset_dir='{ds}'", f"data.tokenizer_path='{tok}'"])


def _truncate(path, n=10):
    data = path.read_bytes()
    path.write_bytes(data[:-n])


def test_a_truncated_training_shard_fails_before_anything_is_created(data_copy, tmp_path, capsys):
    ds, tok = data_copy
    last = sorted(ds.glob("fineweb_train_*.bin"))[-1]  # the one the loader would reach last
    _truncate(last)
    out = tmp_path / "run"
    assert main(["run", "demo", "--tiny", "--set", f"data.dataset_dir='{ds}'", "--set", f"data.tokenizer_path='{tok}'",
                 "--out", str(out)]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"golf: error: {last}: truncated shard: header says ")
    assert not out.exists()


def test_a_truncated_validation_shard_and_a_junk_tokenizer(data_copy):
    ds, tok = data_copy
    val = sorted(ds.glob("fineweb_val_*.bin"))[0]
    _truncate(val)
    with pytest.raises(DataError, match=f"^{val}: truncated shard"):
        preflight_run(_recipe(ds, tok))
    with pytest.raises(DataError, match=f"^{val}: truncated shard"):
        preflight_eval(_recipe(ds, tok))
    tok.write_bytes(b"not a sentencepiece model")
    with pytest.raises(DataError, match=f"^{tok}: not a readable SentencePiece model"):
        preflight_run(_recipe(ds, tok))


def test_token_ids_outside_the_vocab_and_a_too_short_stream(data_copy):
    ds, tok = data_copy
    for p in ds.glob("fineweb_val_*.bin"):
        p.unlink()
    bad = ds / "fineweb_val_000000.bin"
    write_shard(bad, np.array([1, 5, 2000, 7] * 100, dtype=np.uint16))
    with pytest.raises(DataError, match=f"^{bad}: token id 2000 is outside the recipe's vocab_size 1024"):
        preflight_run(_recipe(ds, tok))
    write_shard(bad, np.array([1, 5, 6], dtype=np.uint16))
    with pytest.raises(DataError, match="the validation stream holds 3 tokens, fewer than one eval window"):
        preflight_run(_recipe(ds, tok))


def test_data_record_hashes_every_file(data_copy):
    ds, tok = data_copy
    paths = preflight_run(_recipe(ds, tok))
    rec = data_record(paths)
    assert rec["tokenizer"]["sha256"] == hashlib.sha256(tok.read_bytes()).hexdigest()
    shards = rec["train_shards"] + rec["val_shards"]
    assert len(shards) == len(paths.train_files) + len(paths.val_files)
    for s in shards:
        data = open(s["path"], "rb").read()
        assert (s["size"], s["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    assert rec["data_manifest"]["sha256"] == hashlib.sha256((ds / "manifest.json").read_bytes()).hexdigest()
    # a changed shard is hashed again (the cache is keyed by size and mtime)
    first = paths.val_files[0]
    _truncate(first, 2)
    again = data_record(paths)["val_shards"][0]
    assert again["sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()
