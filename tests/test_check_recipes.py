"""golf check --tiny on the seed recipes: each verdict with its evidence.

pr1229 fails causality (scored-position SLOT); pr1306 as published fails causality (batch-shared
delta, and pre-quant TTT on validation data moves everything) and trains on validation data;
pr1423 trains on validation data; pr1394, pr1413, pr1306-causal and pr1423-legal pass.

Each check is kept short (6 layers, 2 training steps of 1,024 tokens, a 512-target stream, a
few cuts, one calibration batch, fewer SLOT/TTT steps): the verdicts do not depend on size. Each recipe is
checked once per module, on first use.
"""
from __future__ import annotations

import pytest

from golf_core.check import FAIL, PASS, CheckOptions, check_recipe
from golf_core.recipe import load_recipe

SHORT = ["model.num_layers=6", "model.mlp_mult=2.0", "train.iterations=2", "train.warmup_steps=0",
         "train.train_batch_tokens=1024", "eval.max_tokens=513", "options.gptq.calibration_batches=1",
         "options.gptq.calibration_seqs=2", "options.gptq.report=false"]
EXTRA = {
    "pr1229": ["options.slot.steps=4"],
    "pr1306": ["options.prequant-ttt.epochs=1"],
    "pr1306-causal": ["options.causal-slot.steps=4", "options.prequant-ttt.epochs=1",
                      "options.prequant-ttt.train_tokens=1024"],
    "pr1423": ["options.prequant-ttt.epochs=1"],
    "pr1413": ["options.score-first-ttt.chunk_tokens=128", "options.score-first-ttt.epochs=1"],
    "pr1423-legal": ["options.prequant-ttt.epochs=1", "options.prequant-ttt.train_tokens=1024",
                     "options.score-first-ttt.chunk_tokens=128", "options.score-first-ttt.epochs=1"],
}
PASSING = ["pr1394", "pr1413", "pr1306-causal", "pr1423-legal"]
_CACHE: dict = {}


@pytest.fixture(scope="module")
def checked(tmp_path_factory, demo_data):
    """``checked(name)`` -> the CheckReport of recipe ``name`` under --tiny (run once per module)."""
    root = tmp_path_factory.mktemp("check-recipes")

    def get(name: str):
        if name not in _CACHE:
            recipe = load_recipe(name, overrides=SHORT + EXTRA.get(name, []), tiny=True)
            _CACHE[name] = check_recipe(recipe, root / name, CheckOptions(cuts=3, cuts_b=1, whole_cuts=1, flips=16, seed=9, echo=False))
        return _CACHE[name]

    yield get
    _CACHE.clear()


@pytest.mark.slow
def test_pr1229_fails_causality(checked):
    rep = checked("pr1229")
    r = rep.rule("causality")
    assert r.verdict == FAIL and "moved by" in r.evidence and "declared not-causal: slot" in r.evidence, rep.table()
    # #1229 fits on the targets it scores: it reads batch.y before scoring
    assert rep.rule("targets_after_scoring").verdict == FAIL
    assert rep.rule("no_validation_before_scoring").verdict == PASS
    assert rep.rule("scored_once").verdict == PASS
    assert not rep.passed


@pytest.mark.slow
def test_pr1306_fails_batch_shared_delta_and_prequant_ttt_on_val(checked):
    rep = checked("pr1306")
    c = rep.rule("causality")
    assert c.verdict == FAIL and "declared not-causal: causal-slot" in c.evidence, rep.table()
    v = rep.rule("no_validation_before_scoring")
    assert v.verdict == FAIL
    assert "of validation data in phase pre_quant: prequant-ttt" in v.evidence
    assert "declared trains-on-val: prequant-ttt" in v.evidence
    # the fine-tune on validation data makes the artifact depend on the shards on disk
    assert rep.rule("audit_reproduces").verdict == FAIL


@pytest.mark.slow
def test_pr1423_fails_trains_on_validation_data(checked):
    rep = checked("pr1423")
    v = rep.rule("no_validation_before_scoring")
    assert v.verdict == FAIL and "phase pre_quant: prequant-ttt" in v.evidence, rep.table()
    assert rep.rule("audit_reproduces").verdict == FAIL and "artifact differs" in rep.rule("audit_reproduces").evidence
    assert rep.rule("artifact_cap").verdict == PASS


@pytest.mark.slow
@pytest.mark.parametrize("name", PASSING)
def test_legal_recipes_pass(checked, name):
    rep = checked(name)
    assert rep.passed, rep.table()
    v = {r.id: r.verdict for r in rep.rules}
    assert v["causality"] == PASS and "0 of" in rep.rule("causality").evidence
    assert v["audit_reproduces"] == PASS and v["normalization"] == PASS and v["targets_after_scoring"] == PASS
    assert v["scored_once"] == PASS and v["no_validation_before_scoring"] == PASS and v["artifact_cap"] == PASS
    assert v["train_clock"] == "not judged" and v["eval_clock"] == "not judged"
    if name in ("pr1413", "pr1423-legal"):
        sbu = rep.rule("score_before_update")
        assert sbu.verdict == PASS and "update events" in sbu.evidence
