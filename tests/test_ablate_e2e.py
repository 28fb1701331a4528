"""`golf ablate recipes/demo.toml --toggle qk-gain,leaky-relu-sq --seeds 2 --tiny` for real:
killed (SIGKILL) after two runs, then repeated; it completes without rerunning finished runs
and writes all four files."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TOGGLE = "qk-gain,leaky-relu-sq"
# --tiny, cut further: 2 layers, 4 steps of 1,024 tokens, a 2,049-token validation slice scored
# in non-overlapping windows (stride = seq_len), in-training validation every 2 steps so that
# curves.png has curves.
FAST = ["--tiny", "--set", "model.num_layers=2", "--set", "train.iterations=4", "--set", "train.warmup_steps=0",
        "--set", "train.train_batch_tokens=1024", "--set", "train.warmdown_iters=2",
        "--set", "train.val_loss_every=2", "--set", "train.log_every=2", "--set", "eval.max_tokens=2049",
        "--set", "eval.stride=128"]


def _cmd(out: Path) -> list[str]:
    return [sys.executable, "-m", "golf_core", "ablate", "recipes/demo.toml", "--toggle", TOGGLE,
            "--seeds", "2", *FAST, "--out", str(out)]


def _results(out: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in out.glob("*/seed*/result.json")}


@pytest.mark.slow
def test_golf_ablate_demo_tiny_killed_and_resumed(tmp_path, demo_data):
    out = tmp_path / "abl"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log1 = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen(_cmd(out), cwd=REPO, stdout=log1, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 600
        while len(_results(out)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        proc.kill()  # SIGKILL: no cleanup, whatever run is in flight is torn
    finally:
        proc.wait()
        log1.close()
    finished = _results(out)
    assert 2 <= len(finished) < 6
    assert not (out / "ablation.md").exists()

    second = subprocess.run(_cmd(out), cwd=REPO, capture_output=True, text=True, env=env, timeout=900)
    assert second.returncode == 0, second.stderr[-3000:]
    # the runs finished before the kill were not run again
    assert second.stderr.count("already complete") == len(finished)
    for p, mtime in finished.items():
        assert p.stat().st_mtime_ns == mtime, p
    assert len(_results(out)) == 6

    for name in ("ablation.json", "ablation.md", "ablation.png", "curves.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    data = json.loads((out / "ablation.json").read_text())
    assert data["complete"] and data["tiny"] and len(data["seeds"]) == 2
    names = [v["name"] for v in data["variants"]]
    assert names == ["base", "+qk-gain", "+leaky-relu-sq"]
    base = data["variants"][0]
    assert "qk-gain" not in base["plugins"] and "leaky-relu-sq" not in base["plugins"]
    for v in data["variants"]:
        assert v["n"] == 2 and len(v["val_bpb"]) == 2 and v["artifact_bytes"] > 0
        assert v["train_seconds"] is not None and v["eval_seconds"] is not None
    for v in data["variants"][1:]:
        assert v["p"] is None or 0.0 <= v["p"] <= 1.0
        assert isinstance(v["passes_bar"], bool)
        assert v["name"][1:] in v["plugins"]
    assert data["bar"]["margin_bpb"] > 0
    # every run directory is a normal golf run directory
    for run in data["runs"]:
        rd = Path(run["run_dir"])
        for f in ("resolved.toml", "manifest.json", "train.log", "metrics.jsonl", "artifact.bin", "result.json"):
            assert (rd / f).is_file(), rd / f
        assert json.loads((rd / "result.json").read_text())["seed"] == run["seed"]
