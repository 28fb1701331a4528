"""Issue 16 (1): run directories are never silently reused; validation comes before anything is
created; files are written atomically."""
from __future__ import annotations

import json

import pytest

from golf_core import rundir
from golf_core.cli import main
from golf_core.errors import GolfError


def _finished_run(d):
    d.mkdir(parents=True)
    (d / "resolved.toml").write_text("old recipe\n")
    (d / "result.json").write_text(json.dumps({"val_bpb": 1.5}))
    (d / "compliance.json").write_text("{}")
    (d / "checkpoints").mkdir()
    return d


def test_a_finished_run_dir_is_refused_and_left_untouched(tmp_path, capsys):
    d = _finished_run(tmp_path / "run")
    before = {p.name: p.read_bytes() for p in d.iterdir() if p.is_file()}
    assert main(["run", "demo", "--tiny", "--out", str(d)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"golf: error: --out {d} already holds a finished run; --resume {d} continues it, "
                       f"--force replaces it")
    assert {p.name: p.read_bytes() for p in d.iterdir() if p.is_file()} == before


def test_force_replaces_only_what_golf_wrote(tmp_path):
    d = _finished_run(tmp_path / "run")
    (d / "metrics.jsonl.tmp").write_text("torn")
    rundir.claim_run_dir(d, force=True)
    assert list(d.iterdir()) == []  # the old compliance.json is gone too: it cannot leak into an export
    other = tmp_path / "notes"
    other.mkdir()
    (other / "result.json").write_text("{}")
    (other / "my_notes.txt").write_text("keep me")
    with pytest.raises(GolfError, match=r"is not a golf run directory \(it holds 'my_notes.txt'\); choose another --out"):
        rundir.claim_run_dir(other, force=True)
    assert (other / "my_notes.txt").read_text() == "keep me"


def test_an_unfinished_run_says_so_and_empty_or_missing_folders_are_fine(tmp_path):
    d = tmp_path / "crashed"
    d.mkdir()
    (d / "train.log").write_text("step 3\n")
    with pytest.raises(GolfError, match="already holds an unfinished run; --resume"):
        rundir.claim_run_dir(d)
    (tmp_path / "empty").mkdir()
    rundir.claim_run_dir(tmp_path / "empty")
    rundir.claim_run_dir(tmp_path / "missing")
    assert not (tmp_path / "missing").exists()  # claiming creates nothing
    (tmp_path / "file").write_text("x")
    with pytest.raises(GolfError, match="is a file, not a folder"):
        rundir.claim_run_dir(tmp_path / "file")


def test_a_recipe_error_creates_no_run_dir(tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["run", "demo", "--tiny", "--set", "options.qk-gain.bogus=1", "--out", str(out)]) == 2
    assert "bogus" in capsys.readouterr().err
    assert not out.exists()


def test_atomic_writes_leave_no_temporary_file(tmp_path):
    rundir.write_text_atomic(tmp_path / "resolved.toml", "a = 1\n")
    rundir.write_json_atomic(tmp_path / "result.json", {"x": float("nan")})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resolved.toml", "result.json"]
    assert json.loads((tmp_path / "result.json").read_text()) == {"x": None}


def test_default_run_dir_names_the_recipe_and_time():
    assert str(rundir.default_run_dir("recipes/demo.toml", now=0)).startswith("runs/demo-19")
