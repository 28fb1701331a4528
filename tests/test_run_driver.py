"""The run driver (golf_core.run): it alone sequences the phases; the core's defaults are a
built-in plugin; result.json has one schema; legality severity has one order."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from golf_core import TechniqueInfo, hookimpl
from golf_core import plugins as P
from golf_core.recipe import Recipe, apply_override, load_recipe_text, validate_recipe_data

REPO = Path(__file__).resolve().parent.parent

#: Hooks that make up the run's phases after training; only the driver calls them.
PHASE_HOOKS = ("golf_build_model", "golf_pre_quant", "golf_quantize", "golf_compress", "golf_decompress",
               "golf_dequantize", "golf_on_artifact_load", "golf_eval_adapt", "golf_summary")
_CALL = re.compile(r"\.(?:transform|exclusive|observe|collect|call_plugin)\(\s*(?:[\w.]+,\s*)?[\"'](golf_\w+)[\"']")


def _sources():
    roots = [REPO / "golf_core", REPO / "bench", *sorted((REPO / "plugins").glob("golf-*/golf_*"))]
    for root in roots:
        yield from sorted(root.rglob("*.py"))


def test_no_module_outside_the_driver_calls_a_phase_hook():
    """grep: the hooks of the phase sequence are called from golf_core/run/ only."""
    driver = REPO / "golf_core" / "run"
    found = {}
    for path in _sources():
        for hook in _CALL.findall(path.read_text()):
            found.setdefault(hook, set()).add(path.relative_to(REPO).as_posix())
    assert set(PHASE_HOOKS) <= set(found), f"the scan no longer sees the driver's calls: {found}"
    outside = {h: sorted(p for p in found[h] if not p.startswith(driver.relative_to(REPO).as_posix()))
               for h in PHASE_HOOKS}
    assert not any(outside.values()), outside


def test_the_grep_catches_a_phase_call():
    assert _CALL.findall('ctx.plugins.transform("golf_pre_quant", "model", m, ctx=ctx)') == ["golf_pre_quant"]
    assert _CALL.findall("plugins.call_plugin(name, 'golf_quantize', model=m)") == ["golf_quantize"]
    assert _CALL.findall('plugins.exclusive(\n    "golf_compress", data=b"")') == ["golf_compress"]


def test_defaults_implement_exactly_the_exclusive_hooks():
    from golf_core import defaults

    implemented = {n for n in dir(defaults) if n.startswith("golf_") and callable(getattr(defaults, n))}
    assert implemented == set(P.EXCLUSIVE_HOOKS)


def _plugin(name, **hooks):
    ns = type(name, (), {})()
    ns.golf_register = hookimpl(lambda register: register(TechniqueInfo(name=name)))
    for hook, fn in hooks.items():
        setattr(ns, hook, hookimpl(fn))
    return ns


def test_exclusive_hooks_fall_back_to_the_builtin_plugin(fresh_registry):
    import zlib

    from golf_core.context import RunContext

    fresh_registry.add("plain", _plugin("plain"))
    fresh_registry.add("codec", _plugin("codec", golf_compress=lambda data: ("rev", data[::-1])))
    recipe = Recipe(plugins=["plain"])
    recipe.artifact.compressor = "zlib"
    recipe.artifact.byte_shuffle = False
    ap = P.activate(recipe)
    ctx = RunContext(recipe=recipe, plugins=ap)
    codec, blob = ap.exclusive("golf_compress", data=b"abcabc", ctx=ctx)
    assert codec == "zlib" and zlib.decompress(blob) == b"abcabc"
    assert ap.providers("golf_compress") == []  # the built-in plugin is never a provider
    ap2 = P.activate(Recipe(plugins=["plain", "codec"]))
    assert ap2.exclusive("golf_compress", data=b"abc", ctx=ctx) == ("rev", b"cba")


def test_hook_calls_name_the_running_plugin(fresh_registry):
    """The plugin manager sets ctx.current_plugin around each call (the core's default: None)."""
    from golf_core.context import RunContext

    seen = []
    fresh_registry.add("a", _plugin("a", golf_pre_quant=lambda model, ctx: seen.append(ctx.current_plugin)))
    fresh_registry.add("b", _plugin("b", golf_pre_quant=lambda model, ctx: seen.append(ctx.current_plugin),
                                    golf_decompress=lambda codec, data, ctx: seen.append(ctx.current_plugin)))
    recipe = Recipe(plugins=["a", "b"])
    ap = P.activate(recipe)
    ctx = RunContext(recipe=recipe, plugins=ap)
    ap.transform("golf_pre_quant", "model", None, ctx=ctx)
    ap.exclusive("golf_decompress", codec="zlib", data=b"", ctx=ctx)
    core = P.activate(Recipe(plugins=["a"]))
    ctx.current_plugin = "outer"
    core.exclusive("golf_decompress", codec="zlib", data=__import__("zlib").compress(b""), ctx=ctx)
    assert seen == ["a", "b", "b"] and ctx.current_plugin == "outer"


def test_severity_has_one_order():
    from golf_core.technique import LEGALITY_TRACKS, by_severity, most_severe

    assert LEGALITY_TRACKS == ("fixed-predictor", "score-first", "not-causal", "trains-on-val")
    assert most_severe([]) == "fixed-predictor"
    assert most_severe(["score-first", "not-causal", "fixed-predictor"]) == "not-causal"
    assert most_severe(["trains-on-val", "not-causal"]) == "trains-on-val"
    assert by_severity(["trains-on-val", "score-first", "score-first"]) == ["score-first", "trains-on-val"]


def test_a_run_without_a_model_says_which_phase_is_missing():
    from golf_core.context import RunContext
    from golf_core.run import Run

    recipe = Recipe()
    run = Run(RunContext(recipe=recipe, plugins=P.ActivePlugins([], {}, {})))
    with pytest.raises(ValueError, match="no model yet"):
        run.pre_quant()


# ---------------------------------------------------------------------------------------------
# one tiny run, driven phase by phase
# ---------------------------------------------------------------------------------------------


class Reader:
    """Reads validation data in golf_pre_quant (puts the run on the trains-on-val track)."""

    @hookimpl
    def golf_register(self, register):
        register(TechniqueInfo(name="reader", legality="score-first"))

    @hookimpl
    def golf_pre_quant(self, model, ctx):
        ctx.read_validation("test read")

    @hookimpl
    def golf_summary(self, result):
        result["reader"] = {"seen_val_bpb": result["val_bpb"]}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from golf_core.run import Run
    from golf_core.tiny import apply_tiny

    reg = P.PluginRegistry()
    reg.add("reader", Reader())
    data = apply_tiny(load_recipe_text('plugins = ["reader"]\n', "reader.toml").to_dict())
    for o in ("train.iterations=2", "train.warmdown_iters=1", "eval.max_tokens=1025"):
        apply_override(data, o)
    recipe = validate_recipe_data(data, "reader.toml")
    out = tmp_path_factory.mktemp("driver")
    with Run.from_recipe(recipe, out, reg=reg, echo=False) as run:
        run.setup()
        run.data()
        run.build()
        run.train()
        trained = {k: v.clone() for k, v in run.model.state_dict().items()}
        run.pre_quant()
        run.pre_quant_eval()
        run.write_artifact()
        run.load_artifact()
        run.eval()
        result = run.report()
    return run, result, out, trained


def test_result_json_is_the_result_model(tiny_run):
    from golf_core.run import Result

    run, result, out, _ = tiny_run
    on_disk = json.loads((out / "result.json").read_text())
    core = [k for k in Result.model_fields]
    assert list(on_disk)[: len(core)] == core and list(on_disk)[len(core):] == ["reader"]
    assert on_disk["reader"] == {"seen_val_bpb": on_disk["val_bpb"]}
    assert Result.model_validate(on_disk).as_json() == on_disk
    assert on_disk["artifact_bytes"] == on_disk["code_bytes"] + on_disk["model_bytes"]
    assert on_disk["model_bytes"] == (out / "artifact.bin").stat().st_size
    # the eval clocks nest: the adapter's loop (what records time) <= decode + eval <= all after training
    assert 0 < on_disk["adapt_seconds"] <= on_disk["eval_seconds"] < on_disk["post_train_seconds"]
    bad = dict(on_disk)
    del bad["val_bpb"]
    with pytest.raises(Exception, match="val_bpb"):
        Result.model_validate(bad)


def test_legality_summary_takes_the_most_severe_track(tiny_run):
    _, result, _, _ = tiny_run
    leg = result.legality
    assert leg.plugins == {"reader": "score-first"}
    assert leg.track == "trains-on-val" and leg.trains_on_validation and not leg.passed
    assert [r["phase"] for r in leg.validation_reads] == ["pre_quant"]


def test_golf_eval_scores_the_artifact_like_the_run(tiny_run):
    from golf_core.commands.eval import evaluate_artifact

    run, result, out, _ = tiny_run
    got = evaluate_artifact(out / "artifact.bin", echo=False)
    assert got["val_bpb"] == result.val_bpb and got["val_tokens"] == result.val_tokens


def test_post_train_from_kept_weights_writes_the_same_artifact(tiny_run, tmp_path):
    """``golf check``'s path: fresh weights loaded into a Run over the same context give the same
    artifact bytes as the run itself."""
    from golf_core.run import Run

    run, result, out, trained = tiny_run
    again = Run(run.ctx)
    again.load_weights(trained)
    sizes = again.post_train(tmp_path / "artifact.bin")
    assert again.model is None
    assert (tmp_path / "artifact.bin").read_bytes() == (out / "artifact.bin").read_bytes()
    assert sizes["model_bytes"] == result.model_bytes
    assert torch.equal(again.load_artifact(tmp_path / "artifact.bin").tok_emb.weight,
                       run.model.tok_emb.weight)


def test_validate_lists_tracks_by_severity(fresh_registry, tmp_path, capsys):
    from golf_core.cli import main

    fresh_registry.add("val", _plugin_on_track("val", "trains-on-val"))
    fresh_registry.add("sf", _plugin_on_track("sf", "score-first"))
    recipe = tmp_path / "r.toml"
    recipe.write_text('plugins = ["val", "sf"]\n[model]\nnum_layers = 1\nmodel_dim = 32\nnum_heads = 2\nnum_kv_heads = 1\n')
    assert main(["validate", str(recipe)]) == 0
    assert "legality: score-first, trains-on-val (declared: fixed-predictor)" in capsys.readouterr().out


def _plugin_on_track(name, track):
    ns = type(name, (), {})()
    ns.golf_register = hookimpl(lambda register: register(TechniqueInfo(name=name, legality=track)))
    return ns
