"""golf check RUN_DIR on runs made by ``golf run`` (golf_core.run.run_recipe).

A pre-quant plugin written here fine-tunes on validation data (scales the embedding by the
stream's mean token). With a checkpoint of the run's last step, the check re-runs the whole
post-training pipeline from it: the flip reaches the plugin through ctx.read_validation and
every earlier score moves (causality fails), and the read is named by phase and plugin. Without
the checkpoint, the flip covers eval time only (the artifact is fixed: causality passes) and the
read is judged from result.json. A plugin reading the stream through the context's private
loader, unrecorded by the run, is caught by the check's own context."""
from __future__ import annotations

import shutil

import pytest
import torch

from golf_core import NoOptions, TechniqueInfo, hookimpl
from golf_core.check import FAIL, PASS, CheckOptions, check_run_dir
from golf_core.recipe import apply_override, load_recipe_text, validate_recipe_data
from golf_core.tiny import apply_tiny

SHORT = ["model.num_layers=2", "train.iterations=2", "train.warmup_steps=0", "train.checkpoint_every=2",
         "eval.max_tokens=513", "eval.stride=64"]


def _nudge(model, tokens):
    with torch.no_grad():
        model.tok_emb.weight.mul_(1.0 + 1e-3 * float(tokens.double().mean()))
    return model


class ValNudge:
    """Pre-quant: reads validation data (recorded) and lets it change the weights."""

    @hookimpl
    def golf_register(self, register):
        register(TechniqueInfo(name="valnudge", options=NoOptions, summary="test: pre-quant tune on validation data"))

    @hookimpl
    def golf_pre_quant(self, model, ctx):
        return _nudge(model, ctx.read_validation("valnudge: test fine-tune on validation tokens"))


class Sneak:
    """Pre-quant: reads validation data through the private loader (unrecorded by a plain run)."""

    @hookimpl
    def golf_register(self, register):
        register(TechniqueInfo(name="sneak", options=NoOptions, summary="test: unrecorded validation read"))

    @hookimpl
    def golf_pre_quant(self, model, ctx):
        return _nudge(model, ctx._load_validation())


@pytest.fixture(scope="module")
def runs(tmp_path_factory, demo_data):
    """Run directories of ``golf run`` for recipes using each test plugin (module scope)."""
    from golf_core import plugins as P
    from golf_core.run import run_recipe

    old = P._REGISTRY
    reg = P.PluginRegistry()
    reg.add("valnudge", ValNudge())
    reg.add("sneak", Sneak())
    P.set_registry(reg)
    root = tmp_path_factory.mktemp("runs")
    out = {}
    try:
        for name in ("valnudge", "sneak", "plain"):
            plugins = [] if name == "plain" else [name]
            data = apply_tiny(load_recipe_text(f"plugins = {plugins!r}\n", f"{name}.toml").to_dict())
            for o in SHORT:
                apply_override(data, o)
            recipe = validate_recipe_data(data, f"{name}.toml")
            run_recipe(recipe, root / name, echo=False, progress=False)
            out[name] = root / name
        yield out
    finally:
        P.set_registry(old)


OPTS = CheckOptions(probes=2, echo=False)


@pytest.mark.slow
def test_final_checkpoint_gives_the_whole_pipeline(runs, tmp_path):
    rep = check_run_dir(runs["valnudge"], tmp_path, OPTS)
    c = rep.rule("causality")
    assert c.verdict == FAIL and "weights from the final checkpoint" in c.evidence, rep.table()
    assert "probes score the base artifact" not in c.evidence
    # nearly every earlier score moves: the whole stream reached the fine-tune (int8 rounding
    # leaves a few rows, and so a few scores, unchanged)
    for p in c.details["probes"]:
        assert p["moved"] > 0.9 * p["checked"]
    v = rep.rule("no_validation_before_scoring")
    assert v.verdict == FAIL and "1 read of validation data in phase pre_quant: valnudge" in v.evidence


@pytest.mark.slow
def test_without_checkpoint_eval_time_only_and_reads_from_result_json(runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs["valnudge"], run, ignore=shutil.ignore_patterns("checkpoints"))
    rep = check_run_dir(run, None, OPTS)
    c = rep.rule("causality")
    assert c.verdict == PASS and "eval-time adaptation" in c.evidence, rep.table()
    v = rep.rule("no_validation_before_scoring")
    assert v.verdict == FAIL and "phase pre_quant: valnudge" in v.evidence
    assert (run / "compliance.json").is_file()


@pytest.mark.slow
def test_unrecorded_validation_load_is_caught(runs, tmp_path):
    import json

    legality = json.loads((runs["sneak"] / "result.json").read_text())["legality"]
    assert legality["validation_reads"] == []          # the plain run did not see it
    rep = check_run_dir(runs["sneak"], tmp_path, OPTS)
    v = rep.rule("no_validation_before_scoring")
    assert v.verdict == FAIL and "unrecorded load of the validation stream in phase pre_quant: sneak" in v.evidence
    assert rep.rule("causality").verdict == FAIL


@pytest.mark.slow
def test_full_pipeline_per_probe_on_request(runs, tmp_path):
    # no validation read before scoring: by default the probes score the base artifact; with
    # reuse_artifact=False every probe re-runs pre-quant and quantization from the checkpoint,
    # and the same probes also run at eval time alone
    rep = check_run_dir(runs["plain"], tmp_path, CheckOptions(probes=2, echo=False, reuse_artifact=False))
    c = rep.rule("causality")
    assert c.verdict == PASS, rep.table()
    assert c.evidence.startswith("eval time (artifact fixed): 2 probes")
    assert "whole post-training pipeline (weights from the final checkpoint): 2 probes" in c.evidence
    assert rep.passed
