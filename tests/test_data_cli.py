"""`golf data build` and `golf data inspect`."""
from __future__ import annotations

import json

import numpy as np

from golf_core.cli import main
from golf_core.data.inspect import inspect_dataset
from golf_core.data.shards import read_shard
from golf_core.data.tokenizer import load_tokenizer


def test_inspect_counts(demo_data, capsys):
    report = inspect_dataset(demo_data.dataset_dir)
    sp = load_tokenizer(demo_data.tokenizer_path)
    by_file = {s.file: s for s in report.shards}
    for f in demo_data.val_files + demo_data.train_files:
        toks = np.asarray(read_shard(f))
        assert by_file[f.name].tokens == toks.size
        assert by_file[f.name].docs == int((toks == 1).sum())
    val = report.totals["val"]
    # the validation split holds whole documents: its bytes are the UTF-8 length of their decoded text
    stream = np.asarray(read_shard(demo_data.val_files[0])).astype(np.int64)
    bos = np.nonzero(stream == 1)[0].tolist() + [stream.size]
    decoded = sum(len(sp.decode(stream[a + 1:b].tolist()).encode()) for a, b in zip(bos[:-1], bos[1:]))
    assert val["bytes"] == decoded
    assert abs(val["tokens_per_byte"] - val["tokens"] / val["bytes"]) < 1e-12
    assert report.first_text and report.first_text == sp.decode(stream[1:bos[1]].tolist())[:400]

    root = demo_data.dataset_dir.parent.parent
    assert main(["data", "inspect", str(root)]) == 0
    out = capsys.readouterr().out
    assert "fineweb_val_000000.bin" in out and f"{val['tokens']:,}" in out and "first text:" in out
    assert main(["data", "inspect", str(demo_data.dataset_dir), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["totals"]["val"]["bytes"] == decoded


def test_build_command(demo_data, capsys):
    root = demo_data.dataset_dir.parent.parent
    assert main(["data", "build", "--vocab", "1024", "--out", str(root)]) == 0  # cached
    out = capsys.readouterr().out
    assert str(demo_data.dataset_dir) in out and "sha256" in out


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["data", "inspect", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("golf: error: ") and err.count("\n") == 1
    assert main(["data", "build", "--source", str(tmp_path / "nope.txt"), "--out", str(tmp_path)]) == 2
    assert "nope.txt" in capsys.readouterr().err
    assert main(["data", "build", "--vocab", "100", "--out", str(tmp_path)]) == 2
    assert "vocab_size 100" in capsys.readouterr().err
