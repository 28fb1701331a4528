"""The CaseOps record recipes pr1729, pr1736, pr1787, pr1851, pr1855: their record's parameter
count (golf validate), #1855's stack as run, a --tiny run that passes golf check, and golf ablate
over #1855's plugins one at a time."""
from __future__ import annotations

import json

import pytest

from golf_core.check import PASS, CheckOptions, check_recipe
from golf_core.cli import main
from golf_core.recipe import load_recipe

NAMES = ["pr1729", "pr1736", "pr1787", "pr1851", "pr1855"]
# record logs' `model_params:` (golf builds each architecture whole: routed parallel residuals,
# dense/sparse attention gates, SmearGate)
LOGGED = {"pr1729": 35944602, "pr1736": 35989658, "pr1787": 35945658, "pr1851": 35945671, "pr1855": 35945671}
SHORT = ["model.mlp_mult=2.0", "train.iterations=2", "train.warmup_steps=0",
         "train.train_batch_tokens=1024", "eval.max_tokens=513", "options.gptq.calibration_batches=1",
         "options.gptq.calibration_seqs=2", "options.gptq.report=false"]


@pytest.mark.parametrize("name", NAMES)
def test_validate_prints_the_records_parameter_count(capsys, name):
    assert main(["validate", name]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"params: {LOGGED[name]}" in out and f"record model_params: {LOGGED[name]} (equal)" in out


def test_pr1855_runs_its_nine_hyperparameter_stack_as_far_as_golf_has_it():
    r = load_recipe("pr1855")
    assert r.data.variant == "caseops" and r.data.vocab_size == 8192 and r.data.source == "fineweb"
    assert (r.train.warmdown_frac, r.train.beta2, r.train.min_lr, r.train.reserve_seconds) == (0.85, 0.99, 0.1, 0.5)
    assert r.options["gptq"]["embed_clip_sigmas"] == 14.0 and r.options["gptq"]["embed_bits"] == 7
    assert {k: r.options["depth-recurrence"][k] for k in ("loop_start", "loop_end", "enable_at")} == {
        "loop_start": 3, "loop_end": 5, "enable_at": 0.35}
    assert r.options["muon-eq-r"]["weight_decay"] == 0.095 and r.options["ema"]["decay"] == 0.9965
    assert (r.meta.reported_val_bpb, r.meta.date, r.meta.legality) == (1.06108, "2026-04-27", "score-first")
    assert r.options["attn-gate"] == {"mode": "sparse", "window": 12, "init_std": 0.0, "scale": 0.5}
    assert r.options["smear-gate"]["bos_fix"] and r.options["parallel-residuals"]["start_layer"] == 8
    assert r.plugins[0] == "varlen-attn" and "shuffled-loader" not in r.plugins
    assert {"polar-express", "pergroup"} <= set(r.plugins) and "muon-wd-taper" not in r.plugins
    g = r.options["gptq"]
    assert (g["mlp_clip_sigmas"], g["attn_clip_sigmas"], g["gate_int8"], g["lqer_top_k"], g["lqer_rank"]) == (11.5, 13.0, True, 3, 4)
    t = r.options["lora-ttt"]  # items 5-7 and 9 of #1855's stack, over #1787's refinements
    assert (t["beta2"], t["weight_decay"], t["rank"], t["prefix_docs"]) == (0.99, 0.5, 80, 2500)
    assert (t["alpha"], t["warm_start_a"], t["num_phases"], t["chunk_size"]) == (144.0, True, 3, 48)
    # what pr1851 ran instead, one value per item of #1855's stack golf has
    b = load_recipe("pr1851")
    assert (b.train.warmdown_frac, b.train.beta2, b.options["gptq"]["embed_clip_sigmas"]) == (0.75, 0.95, 15.0)
    assert b.options["attn-gate"]["scale"] == 1.0 and b.options["gptq"]["mlp_clip_sigmas"] == 12.0
    assert not b.options["gptq"]["gate_int8"] and "pergroup" not in b.plugins


def test_tiny_caseops_recipes_score_on_the_caseops_demo():
    r = load_recipe("pr1729", tiny=True)
    assert (r.data.source, r.data.variant, r.data.vocab_size) == ("demo", "caseops", 1024)


@pytest.mark.slow
def test_pr1855_tiny_passes_golf_check(tmp_path, caseops_demo_data):
    recipe = load_recipe("pr1855", overrides=SHORT, tiny=True)
    rep = check_recipe(recipe, tmp_path / "check", CheckOptions(cuts=3, cuts_b=1, whole_cuts=1, flips=16, seed=9,
                                                                 echo=False))
    assert rep.passed, rep.table()
    v = {r.id: r.verdict for r in rep.rules}
    assert v["causality"] == PASS and v["scored_once"] == PASS and v["document_overlap"] == PASS
    assert "5 training documents left out" in rep.rule("document_overlap").evidence


@pytest.mark.slow
def test_ablate_over_pr1855s_plugins_one_at_a_time(tmp_path, caseops_demo_data, capsys):
    plugins = load_recipe("pr1855").plugins
    out = tmp_path / "abl"
    args = ["ablate", "pr1855", "--toggle", ",".join(plugins), "--mode", "one-at-a-time", "--seeds", "1",
            "--tiny", "--out", str(out)]
    for s in SHORT:
        args += ["--set", s]
    assert main(args) == 0
    table = json.loads((out / "ablation.json").read_text())
    names = [v["name"] for v in table["variants"]]
    assert table["complete"] and len(names) == len(plugins) + 1 and all(f"+{p}" in names for p in plugins)
    assert all(v["n"] == 1 and 0 < v["val_bpb"][0] < 20 for v in table["variants"])
