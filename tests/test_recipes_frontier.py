"""The frontier recipes after #1413 (pr1412, pr1477, pr1493, pr1514, pr1529).

Broadly and cheaply: each validates, `golf validate` prints the record's logged parameter count
as equal (the full-size model is counted without training), the meta names the record folder,
and the techniques are wired as the records ran them. Selectively, end to end: pr1412
(progressive recurrence + GPT-J lanes, no TTT) and pr1529 (routed lanes + 3-layer recurrence +
score-first TTT) pass `golf check --tiny` in its short form (as tests/test_check_recipes.py).
"""
from __future__ import annotations

import pytest

from golf_core.check import CheckOptions, check_recipe
from golf_core.cli import main
from golf_core.recipe import load_recipe

# the records' own train logs, `model_params:` (seed 42)
LOGGED = {"pr1412": 35943512, "pr1477": 35943513, "pr1493": 35944536, "pr1514": 35944536, "pr1529": 35944602}
FOLDER = {
    "pr1412": "2026-04-06_SP8192_HessianSDClip_ProgressiveRecurrence",
    "pr1477": "2026-04-08_SP8192_ParallelResid_ScoreFirstTTT",
    "pr1493": "2026-04-09_SP8192_3LayerRecur_ParResid_QK525_LegalTTT",
    "pr1514": "2026-04-09_A2_Muon097_3Seed",
    "pr1529": "2026-04-11_ImprovedParallelResiduals_CUTLASS_EVT",
}
REPORTED = {"pr1412": 1.08354, "pr1477": 1.08218, "pr1493": 1.08100, "pr1514": 1.07983, "pr1529": 1.07579}


@pytest.mark.parametrize("name", sorted(LOGGED))
def test_validate_prints_the_logged_parameter_count(capsys, name):
    assert main(["validate", f"recipes/{name}.toml"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"params: {LOGGED[name]}" in out
    assert f"record model_params: {LOGGED[name]} (equal)" in out


@pytest.mark.parametrize("name", sorted(LOGGED))
def test_meta_names_the_record(name):
    meta = load_recipe(name).meta
    assert meta.source == f"openai/parameter-golf PR #{name[2:]}"
    assert meta.reported_val_bpb == pytest.approx(REPORTED[name], abs=5e-6)
    assert FOLDER[name] in meta.notes and "2026-04-" in meta.notes
    assert meta.legality == ("fixed-predictor" if name == "pr1412" else "score-first")


def test_techniques_as_run():
    opts = {n: load_recipe(n).options for n in LOGGED}
    par = {n: (o["parallel-residuals"]["mode"], o["parallel-residuals"]["start_layer"]) for n, o in opts.items()}
    assert par == {"pr1412": ("gptj", 7), "pr1477": ("split", 7), "pr1493": ("gptj", 7), "pr1514": ("gptj", 7),
                   "pr1529": ("routed", 8)}
    loops = {n: (o["depth-recurrence"]["loop_start"], o["depth-recurrence"]["enable_at"],
                 o["depth-recurrence"].get("phase2_at", 0.0)) for n, o in opts.items()}
    assert loops == {"pr1412": (4, 0.5, 0.65), "pr1477": (4, 0.5, 0.0), "pr1493": (3, 0.35, 0.0),
                     "pr1514": (3, 0.5, 0.0), "pr1529": (3, 0.35, 0.0)}
    assert {n: o["qk-gain"]["init"] for n, o in opts.items()} == {
        "pr1412": 4.0, "pr1477": 4.0, "pr1493": 5.25, "pr1514": 5.0, "pr1529": 5.0}
    assert {n: o["muon-eq-r"]["momentum"] for n, o in opts.items()} == {
        "pr1412": 0.99, "pr1477": 0.99, "pr1493": 0.99, "pr1514": 0.97, "pr1529": 0.97}
    r1493, r1529 = load_recipe("pr1493"), load_recipe("pr1529")
    assert (r1493.train.matrix_lr, r1493.train.warmdown_frac, opts["pr1493"]["ema"]["decay"],
            opts["pr1493"]["muon-eq-r"]["weight_decay"]) == (0.022, 0.72, 0.9965, 0.095)
    assert (r1529.train.embed_wd, r1529.train.reserve_seconds, opts["pr1529"]["score-first-ttt"]["lr"]) == (0.095, 13.0, 0.01)
    assert "score-first-ttt" not in load_recipe("pr1412").plugins
    assert opts["pr1412"]["gptq"]["hessian_clip_lambda"] == 0.175  # T20
    assert opts["pr1514"]["score-first-ttt"]["ngram_tilt"] is True  # T27
    assert opts["pr1529"]["score-first-ttt"]["hash_embed_size"] == 16384  # T26's hash embedding


def test_skip_placement_as_run():
    """#1477/#1529 add the first parallel block's U-Net skip before the lanes fork; #1530 and every
    later record fork first and give it to lane0 only (their forward_logits and forward_ttt)."""
    placement = {n: load_recipe(n).options["parallel-residuals"].get("skip_placement", "both-lanes")
                 for n in ("pr1477", "pr1529", "pr1530", "pr1610", "pr1626", "pr1667", "pr1729", "pr1736",
                           "pr1787", "pr1851", "pr1855")}
    assert {n for n, v in placement.items() if v == "both-lanes"} == {"pr1477", "pr1529"}
    assert set(placement.values()) == {"both-lanes", "lane0"}
    # #1530's banked Muon (bf16 momentum) with its banks first in the clip order
    assert {n: load_recipe(n).train.muon_arithmetic for n in ("pr1529", "pr1530", "pr1610", "pr1626", "pr1667")} == dict.fromkeys(
        ("pr1529", "pr1530", "pr1610", "pr1626", "pr1667"), "banks-first")
    # #1667's optimizers never step its top-level SmearGate: frozen at zero, unfixed form
    assert load_recipe("pr1667").options["smear-gate"] == {"bos_fix": False, "trainable": False}


SHORT = ["model.num_layers=6", "model.mlp_mult=2.0", "train.iterations=2", "train.warmup_steps=0",
         "train.train_batch_tokens=1024", "eval.max_tokens=513", "options.gptq.calibration_batches=1",
         "options.gptq.calibration_seqs=2", "options.gptq.report=false"]
TTT_SHORT = ["options.score-first-ttt.chunk_tokens=128", "options.score-first-ttt.epochs=1"]


@pytest.mark.slow
@pytest.mark.parametrize("name,extra", [("pr1412", []), ("pr1529", TTT_SHORT)])
def test_golf_check_tiny_passes(name, extra, tmp_path, demo_data):
    recipe = load_recipe(name, overrides=SHORT + extra, tiny=True)
    rep = check_recipe(recipe, tmp_path / name, CheckOptions(cuts=3, cuts_b=1, whole_cuts=1, flips=16, seed=9, echo=False))
    assert rep.passed, rep.table()
