"""recipes/pr1394.toml: the record's configuration, its parameter count, and the whole stack
running (and running with any one plugin removed) under ``--tiny`` on CPU."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from golf_core import tomlio
from golf_core.cli import main

REPO = Path(__file__).resolve().parent.parent
RECIPE = REPO / "recipes" / "pr1394.toml"
STACK = tomlio.load_file(RECIPE)["plugins"]



def test_recipe_values_are_the_records():
    """Spot values of pg_core.md §5.1 (the recipe writes every one of them)."""
    r = tomlio.load_file(RECIPE)
    assert r["plugins"] == ["shuffled-loader", "qk-gain", "partial-rope", "xsa", "ln-scale", "skip-gates",
                            "leaky-relu-sq", "depth-recurrence", "ortho-init", "muon-eq-r", "ema", "gptq"]
    assert r["meta"] == {**r["meta"], "source": "openai/parameter-golf PR #1394", "reported_val_bpb": 1.08563,
                         "legality": "fixed-predictor", "model_params": 35943512}
    assert r["data"] == {"source": "fineweb", "vocab_size": 8192}
    m, t = r["model"], r["train"]
    assert (m["num_layers"], m["model_dim"], m["num_heads"], m["num_kv_heads"], m["mlp_mult"]) == (11, 512, 8, 4, 4.0)
    assert (t["train_seq_len"], t["train_batch_tokens"], t["warmdown_frac"], t["reserve_seconds"]) == (2048, 786432, 0.667, 12.0)
    assert (t["matrix_lr"], t["scalar_lr"], t["tied_embed_lr"], t["grad_clip_norm"]) == (0.02, 0.02, 0.03, 0.3)
    assert (t["adam_wd"], t["embed_wd"], t["muon_momentum"], t["muon_momentum_warmup_start"]) == (0.02, 0.085, 0.99, 0.92)
    assert r["eval"]["stride"] == 64 and r["artifact"]["compressor"] == "brotli" and r["artifact"]["byte_shuffle"]
    o = r["options"]
    assert o["qk-gain"]["init"] == 4.0 and o["partial-rope"]["rope_dims"] == 16 and o["xsa"]["last_n"] == 11
    assert o["depth-recurrence"] == {"mode": "fraction", "num_loops": 2, "loop_start": 4, "loop_end": 5, "enable_at": 0.5}
    assert o["muon-eq-r"]["weight_decay"] == 0.085 and o["ema"]["decay"] == 0.997
    assert (o["gptq"]["bits"], o["gptq"]["clip_sigmas"], o["gptq"]["embed_bits"], o["gptq"]["embed_clip_sigmas"]) == (6, 12.85, 8, 20.0)


def test_resolved_plugin_options_are_the_records():
    """Values the recipe leaves to plugin defaults (so that --tiny can shrink them) are #1394's."""
    from golf_core.plugins import activate
    from golf_core.recipe import load_recipe

    ap = activate(load_recipe(RECIPE))
    g = ap.options["gptq"]
    assert (g.min_numel, g.calibration_batches, g.calibration_seqs, g.calibration) == (65536, 64, 48, "train")
    assert ap.options["shuffled-loader"].seed_with_rank_only is True
    m = ap.options["muon-eq-r"]
    assert (m.row_normalize, m.momentum, m.momentum_warmup_start, m.momentum_warmup_steps) == (True, 0.99, 0.92, 1500)


def test_validate_prints_the_records_parameter_count(capsys):
    """pg_core.md §7.1: 35,943,512 (11 blocks, vocab 8192, 7 gated skip slots of the looped layout)."""
    assert main(["validate", str(RECIPE)]) == 0
    out = capsys.readouterr().out
    assert "params: 35943512" in out.splitlines()


def _run_tiny(tmp_path: Path, plugins: list[str], *extra: str) -> dict:
    """``golf run`` in-process on a recipe that extends pr1394.toml with another plugin list."""
    import torch

    recipe = tmp_path / "recipe.toml"
    recipe.write_text(f'extends = "{RECIPE.as_posix()}"\nplugins = {json.dumps(plugins)}\n')
    out = tmp_path / "run"
    args = ["run", str(recipe), "--tiny", "--out", str(out), "--set", "train.iterations=6",
            "--set", "eval.max_tokens=4097", "--quiet"]
    for e in extra:
        args += ["--set", e]
    # One intra-op thread: on a busy 2-core box, OpenMP's default threads oversubscribe the
    # cores and a tiny step becomes ~30x slower; one thread costs little when the box is idle.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rc = main(args)
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    return json.loads((out / "result.json").read_text())


@pytest.mark.slow
def test_tiny_runs_the_whole_stack(tmp_path):
    result = _run_tiny(tmp_path, STACK)
    assert result["plugins"] == STACK and result["steps"] == 6
    assert result["val_bpb"] > 0 and result["under_cap"]
    assert result["depth-recurrence"]["enabled_step"] == 3  # enable_at 0.5 of 6 steps


@pytest.mark.slow
@pytest.mark.parametrize("drop", STACK)
def test_tiny_runs_without_any_one_plugin(tmp_path, drop):
    # shorter than the whole-stack run: 3 steps (looping switches on at step 2), no warmup pass
    # beyond one, a 1k-token validation slice, 2 calibration batches
    result = _run_tiny(tmp_path, [p for p in STACK if p != drop], "train.train_batch_tokens=1024",
                       "train.iterations=3", "train.warmup_steps=1", "eval.max_tokens=1025",
                       "options.gptq.calibration_batches=2")
    assert drop not in result["plugins"] and result["val_bpb"] > 0
