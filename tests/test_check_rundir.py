"""golf check RUN_DIR on runs made by ``golf run`` (golf_core.run.run_recipe). Pre-quant
plugins from outside the repository (tests/check_adversaries.py) fine-tune on validation data:
one reads it through ctx.read_validation (recorded), one through the context's private loader
(unrecorded by the plain run). With a checkpoint of the run's last step, the check re-runs every
phase after training on data folders on disk: the artifact then differs between runs whose
shards differ, and the reads are named by phase and plugin. Without the checkpoint, the audit
covers eval time only and the read is judged from result.json."""
from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path

import pytest

from golf_core.check import FAIL, PASS, CheckOptions, check_run_dir
from golf_core.recipe import apply_override, load_recipe_text, validate_recipe_data
from golf_core.tiny import apply_tiny

SHORT = ["model.num_layers=2", "train.iterations=2", "train.warmup_steps=0", "train.checkpoint_every=2",
         "eval.max_tokens=513", "eval.stride=64"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, demo_data):
    """Run directories of ``golf run`` for recipes using each test plugin (module scope)."""
    from golf_core import plugins as P
    from golf_core.run import run_recipe

    d = tmp_path_factory.mktemp("outside")
    shutil.copy(Path(__file__).with_name("check_adversaries.py"), d / "golf_adversaries_rd.py")
    sys.path.insert(0, str(d))
    mod = importlib.import_module("golf_adversaries_rd")
    old = P._REGISTRY
    reg = P.PluginRegistry.discover()
    reg.add("valnudge", mod.ValNudge())
    reg.add("sneak", mod.Sneak())
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
        sys.path.remove(str(d))


OPTS = CheckOptions(cuts=2, cuts_b=1, whole_cuts=1, flips=16, workers=1, seed=4, echo=False)


@pytest.mark.slow
def test_final_checkpoint_reruns_every_phase_after_training(runs, tmp_path):
    rep = check_run_dir(runs["valnudge"], tmp_path, OPTS)
    r = rep.rule("audit_reproduces")
    assert r.verdict == FAIL and "artifact differs" in r.evidence, rep.table()
    v = rep.rule("no_validation_before_scoring")
    assert v.verdict == FAIL and "of validation data in phase pre_quant: valnudge" in v.evidence


@pytest.mark.slow
def test_without_checkpoint_eval_time_only_and_reads_from_result_json(runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs["valnudge"], run, ignore=shutil.ignore_patterns("checkpoints"))
    rep = check_run_dir(run, None, OPTS)
    assert rep.rule("causality").verdict == PASS, rep.table()
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
    assert v.verdict == FAIL and "unrecorded loads of the validation stream in phase pre_quant: sneak" in v.evidence
    assert rep.rule("audit_reproduces").verdict == FAIL


@pytest.mark.slow
def test_plain_run_passes_from_its_checkpoint(runs, tmp_path):
    rep = check_run_dir(runs["plain"], tmp_path, OPTS)
    assert rep.passed, rep.table()
    assert rep.rule("audit_reproduces").verdict == PASS
