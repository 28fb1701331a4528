"""The seed recipes of issue 7 (pr1229, pr1306, pr1306-causal, pr1413, pr1423, pr1423-legal):
they resolve, their values are the records' (research/techniques.md §5-8, pg_core.md §6.1), the
legality track the plugins give equals the one declared in [meta], and each runs under --tiny."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from golf_core import plugins as P
from golf_core.cli import main
from golf_core.technique import most_severe
from golf_core.recipe import load_recipe

REPO = Path(__file__).resolve().parent.parent
SEEDS = ["pr1229", "pr1306", "pr1306-causal", "pr1413", "pr1423", "pr1423-legal"]
def _active(name: str):
    recipe = load_recipe(REPO / "recipes" / f"{name}.toml")
    return recipe, P.activate(recipe, P.PluginRegistry.discover())


def _run_track(tracks: dict[str, str]) -> str:
    return most_severe(tracks.values())


@pytest.mark.parametrize("name", SEEDS)
def test_declared_legality_is_what_the_plugins_give(name):
    recipe, ap = _active(name)
    assert recipe.meta.source and recipe.meta.notes
    assert _run_track(ap.legality()) == recipe.meta.legality


def test_seed_values_are_the_records():
    r, ap = _active("pr1229")
    s = ap.options["slot"]
    assert (s.steps, s.lr, s.lr_min, s.mask, s.per_sample, s.logit_bias) == (16, 0.008, 0.0008, "scored", True, True)
    assert r.meta.reported_val_bpb == 0.93 and r.data.vocab_size == 1024 and ap.options["qk-gain"].init == 4.0

    r, ap = _active("pr1306")
    c = ap.options["causal-slot"]
    assert c.share_delta and (c.optimizer, c.steps, c.lr, c.beta1, c.beta2, c.eps) == ("adamw", 8, 0.005, 0.3, 0.9, 1e-5)
    p = ap.options["prequant-ttt"]
    assert (p.data, p.epochs, p.lr, p.freeze_blocks) == ("val", 6, 5e-4, 2)
    assert r.meta.reported_val_bpb == 1.0846 and r.artifact.compressor == "lzma"
    assert r.plugins.index("ema") < r.plugins.index("prequant-ttt")

    r, ap = _active("pr1306-causal")
    assert not ap.options["causal-slot"].share_delta and ap.options["prequant-ttt"].data == "train"
    assert r.train.reserve_seconds > ap.options["prequant-ttt"].leave_seconds

    r, ap = _active("pr1413")
    t = ap.options["score-first-ttt"]
    assert (t.chunk_tokens, t.lr, t.epochs, t.momentum, t.grad_clip, t.freeze_blocks) == (32768, 0.005, 3, 0.9, 1.0, 0)
    assert ap.options["qk-gain"].init == 5.0 and r.meta.reported_val_bpb == 1.08279 and r.data.vocab_size == 8192

    r, ap = _active("pr1423")
    assert ap.options["prequant-ttt"].data == "val" and ap.options["qk-gain"].init == 5.0
    assert {"depth-recurrence", "muon-eq-r"} <= set(r.plugins) and r.meta.reported_val_bpb == 1.0791

    r, ap = _active("pr1423-legal")
    assert ap.options["prequant-ttt"].data == "train" and "score-first-ttt" in r.plugins
    assert r.train.reserve_seconds > ap.options["prequant-ttt"].leave_seconds


def _run_tiny(tmp_path: Path, name: str) -> dict:
    import torch

    out = tmp_path / name
    args = ["run", str(REPO / "recipes" / f"{name}.toml"), "--tiny", "--out", str(out), "--quiet",
            "--set", "train.iterations=4", "--set", "train.warmup_steps=1", "--set", "eval.max_tokens=4097",
            # pr1229/pr1306 set #1306's 256 calibration batches, which --tiny keeps (30-40 s on CPU)
            "--set", "options.gptq.calibration_batches=4"]
    # one intra-op thread: on a busy 2-core box OpenMP's default threads make tiny steps ~30x slower
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(args) == 0
    finally:
        torch.set_num_threads(threads)
    return json.loads((out / "result.json").read_text())


ADAPTER_KEY = {"pr1229": "slot", "pr1306": "causal-slot", "pr1306-causal": "causal-slot",
               "pr1413": "score-first-ttt", "pr1423": "prequant-ttt", "pr1423-legal": "score-first-ttt"}


@pytest.mark.slow
@pytest.mark.parametrize("name", SEEDS)
def test_seed_recipe_runs_tiny(tmp_path, name):
    result = _run_tiny(tmp_path, name)
    recipe = load_recipe(REPO / "recipes" / f"{name}.toml")
    leg = result["legality"]
    assert result["steps"] == 4 and result["val_bpb"] > 0
    assert leg["checks"]["coverage_exactly_once"] and leg["track"] == recipe.meta.legality
    assert ADAPTER_KEY[name] in result
    assert bool(leg["validation_reads"]) == (name in ("pr1306", "pr1423"))
    if "score-first-ttt" in result:
        assert result["score-first-ttt"]["ledger_certified"] and result["score-first-ttt"]["updates"] >= 1
        assert (tmp_path / name / "eval_ledger.jsonl").is_file()
    if name.endswith(("-legal", "-causal")):
        assert result["prequant-ttt"]["data"] == "train" and result["prequant-ttt"]["steps"] > 0
