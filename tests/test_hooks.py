"""Every hookspec, exercised for real: a recording plugin that implements all of them runs
inside a tiny pipeline (one run shared by the tests), plus the resume and CLI hooks."""
from __future__ import annotations

import argparse

import pytest
import torch

from golf_core import Options, StashKey, TechniqueInfo, hookimpl
from golf_core import plugins as P
from golf_core.recipe import load_recipe_text

CALLS = StashKey[list]("calls")


class RecorderOptions(Options):
    tag: str = "rec"


class Recorder:
    """Implements every non-registration hook; exclusive ones delegate to the core defaults."""

    def __init__(self):
        self.calls: list[tuple[str, str, dict]] = []

    def _rec(self, hook, ctx, **info):
        self.calls.append((hook, getattr(ctx, "phase", None), info))

    @hookimpl
    def golf_register(self, register):
        register(TechniqueInfo(name="recorder", options=RecorderOptions, summary="records hook calls"))

    @hookimpl
    def golf_make_loader(self, ctx, opts, purpose):
        from golf_core import defaults

        self._rec("golf_make_loader", ctx, purpose=purpose, tag=opts.tag)
        return defaults.golf_make_loader(ctx, purpose)

    @hookimpl
    def golf_build_model(self, model, ctx, opts):
        self._rec("golf_build_model", ctx, model=type(model).__name__)
        model.recorder_marker = True
        return model

    @hookimpl
    def golf_configure_optimizers(self, optimizers, model, ctx, opts):
        self._rec("golf_configure_optimizers", ctx, kinds=sorted(optimizers.optimizers) if hasattr(optimizers, "optimizers") else None)
        return None

    @hookimpl
    def golf_compile_warmup(self, model, ctx, opts):
        rec = self

        def enter(m):
            rec._rec("warmup_enter", ctx)
            return lambda: rec._rec("warmup_exit", ctx)

        self._rec("golf_compile_warmup", ctx)
        return [enter]

    @hookimpl
    def golf_on_train_start(self, model, ctx, opts):
        ctx.stash[CALLS] = []
        self._rec("golf_on_train_start", ctx)

    @hookimpl
    def golf_on_step_end(self, model, progress, ctx, opts):
        ctx.stash[CALLS].append(progress.step)
        self._rec("golf_on_step_end", ctx, step=progress.step, frac=progress.frac, lr_mul=progress.lr_mul)

    @hookimpl
    def golf_on_train_end(self, model, ctx, opts):
        self._rec("golf_on_train_end", ctx, steps=list(ctx.stash[CALLS]))

    @hookimpl
    def golf_state_dict(self, ctx, opts):
        self._rec("golf_state_dict", ctx)
        return {"steps_seen": torch.tensor(list(ctx.stash[CALLS]))}

    @hookimpl
    def golf_load_state_dict(self, state, ctx, opts):
        self._rec("golf_load_state_dict", ctx, steps=state["steps_seen"].tolist())
        ctx.stash[CALLS] = state["steps_seen"].tolist()

    @hookimpl
    def golf_pre_quant(self, model, ctx, opts):
        self._rec("golf_pre_quant", ctx, marker=getattr(model, "recorder_marker", False))

    @hookimpl
    def golf_quantize(self, model, ctx, opts):
        from golf_core import defaults

        self._rec("golf_quantize", ctx)
        return defaults.golf_quantize(model, ctx)

    @hookimpl
    def golf_dequantize(self, quantized, ctx, opts):
        from golf_core import defaults

        self._rec("golf_dequantize", ctx, n=len(quantized.tensors))
        return defaults.golf_dequantize(quantized)

    @hookimpl
    def golf_compress(self, data, ctx, opts):
        from golf_core import defaults

        self._rec("golf_compress", ctx, n=len(data))
        return defaults.golf_compress(data, ctx)

    @hookimpl
    def golf_decompress(self, codec, data, ctx, opts):
        from golf_core import defaults

        self._rec("golf_decompress", ctx, codec=codec)
        return defaults.golf_decompress(codec, data, ctx)

    @hookimpl
    def golf_on_artifact_load(self, model, ctx, opts):
        self._rec("golf_on_artifact_load", ctx, marker=getattr(model, "recorder_marker", False))

    @hookimpl
    def golf_eval_adapt(self, model, session, ctx, opts):
        from golf_core.eval.score import score_fixed

        self._rec("golf_eval_adapt", ctx, windows=session.schedule.num_windows)
        score_fixed(model, session, ctx)
        return True

    @hookimpl
    def golf_summary(self, result, ctx, opts):
        self._rec("golf_summary", ctx, val_bpb=result["val_bpb"])
        result["recorder"] = {"calls": len(self.calls)}


RECIPE = """
plugins = ["recorder"]
[options.recorder]
tag = "t1"
"""
SHORT = ["train.iterations=4", "train.checkpoint_every=2", "eval.max_tokens=2049", "train.log_every=2"]


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory):
    from golf_core.run import run_recipe

    reg = P.PluginRegistry()
    rec = Recorder()
    reg.add("recorder", rec)
    recipe = load_recipe_text(RECIPE, "rec.toml")
    from golf_core.tiny import apply_tiny  # same sizes as --tiny
    from golf_core.recipe import apply_override, validate_recipe_data

    data = apply_tiny(recipe.to_dict())
    for o in SHORT:
        apply_override(data, o)
    recipe = validate_recipe_data(data, "rec.toml")
    out = tmp_path_factory.mktemp("hooks")
    result = run_recipe(recipe, out, reg=reg, echo=False, progress=False)
    return rec, result, out, recipe, reg


def names(rec):
    return [c[0] for c in rec.calls]


def first(rec, hook):
    return next(c for c in rec.calls if c[0] == hook)


def test_hook_golf_register(recorded_run):
    rec, result, *_ = recorded_run
    assert result["plugins"] == ["recorder"]


def test_hook_golf_make_loader(recorded_run):
    rec, *_ = recorded_run
    loaders = [c for c in rec.calls if c[0] == "golf_make_loader"]
    # built for warmup, then re-created after the warmup was undone
    assert len(loaders) >= 2 and all(c[2] == {"purpose": "train", "tag": "t1"} for c in loaders)


def test_hook_golf_build_model(recorded_run):
    rec, *_ = recorded_run
    builds = [c for c in rec.calls if c[0] == "golf_build_model"]
    assert len(builds) == 2  # training model, then the fresh model the artifact is decoded into
    assert builds[0][1] == "build"


def test_hook_golf_configure_optimizers(recorded_run):
    rec, *_ = recorded_run
    assert names(rec).count("golf_configure_optimizers") == 1


def test_hook_golf_compile_warmup(recorded_run):
    rec, *_ = recorded_run
    n = names(rec)
    assert n.index("golf_compile_warmup") < n.index("warmup_enter") < n.index("warmup_exit") < n.index("golf_on_train_start")


def test_hook_golf_on_train_start(recorded_run):
    rec, *_ = recorded_run
    n = names(rec)
    assert n.count("golf_on_train_start") == 1 and n.index("golf_on_train_start") < n.index("golf_on_step_end")


def test_hook_golf_on_step_end(recorded_run):
    rec, *_ = recorded_run
    steps = [c[2] for c in rec.calls if c[0] == "golf_on_step_end"]
    assert [s["step"] for s in steps] == [1, 2, 3, 4]
    assert [s["frac"] for s in steps] == pytest.approx([0.25, 0.5, 0.75, 1.0])


def test_hook_golf_on_train_end(recorded_run):
    rec, *_ = recorded_run
    assert first(rec, "golf_on_train_end")[2]["steps"] == [1, 2, 3, 4]


def test_hook_golf_state_dict(recorded_run):
    rec, _, out, *_ = recorded_run
    assert names(rec).count("golf_state_dict") == 2  # checkpoints at steps 2 and 4
    assert any((out / "checkpoints").iterdir())


def test_hook_golf_pre_quant(recorded_run):
    rec, *_ = recorded_run
    c = first(rec, "golf_pre_quant")
    assert c[1] == "pre_quant" and c[2]["marker"] is True
    n = names(rec)
    assert n.index("golf_on_train_end") < n.index("golf_pre_quant") < n.index("golf_quantize")


def test_hook_golf_quantize(recorded_run):
    rec, *_ = recorded_run
    assert first(rec, "golf_quantize")[1] == "quantize"


def test_hook_golf_compress(recorded_run):
    rec, result, *_ = recorded_run
    assert first(rec, "golf_compress")[2]["n"] > result["model_bytes"] * 0.5


def test_hook_golf_decompress(recorded_run):
    rec, *_ = recorded_run
    assert first(rec, "golf_decompress")[2]["codec"] == "zlib"
    n = names(rec)
    assert n.index("golf_compress") < n.index("golf_decompress") < n.index("golf_dequantize")


def test_hook_golf_dequantize(recorded_run):
    rec, *_ = recorded_run
    assert first(rec, "golf_dequantize")[2]["n"] > 0


def test_hook_golf_on_artifact_load(recorded_run):
    rec, *_ = recorded_run
    c = first(rec, "golf_on_artifact_load")
    assert c[2]["marker"] is True  # the fresh model went through golf_build_model too
    n = names(rec)
    assert n.index("golf_dequantize") < n.index("golf_on_artifact_load") < n.index("golf_eval_adapt")


def test_hook_golf_eval_adapt(recorded_run):
    rec, result, *_ = recorded_run
    assert names(rec).count("golf_eval_adapt") == 1  # the final score only; monitors use the fixed scorer
    assert result["legality"]["checks"]["coverage_exactly_once"] is True


def test_hook_golf_summary(recorded_run):
    rec, result, out, *_ = recorded_run
    import json

    saved = json.loads((out / "result.json").read_text())
    assert saved["recorder"]["calls"] >= 15 and first(rec, "golf_summary")[2]["val_bpb"] == result["val_bpb"]


def test_hook_golf_load_state_dict(recorded_run, tmp_path):
    """Resuming from the step-2 checkpoint restores the plugin's state before the loop goes on."""
    from golf_core.run import run_recipe
    from golf_core.train.checkpoint import find_checkpoint

    _, result, out, recipe, _ = recorded_run
    reg = P.PluginRegistry()
    rec2 = Recorder()
    reg.add("recorder", rec2)
    ckpts = sorted(d for d in (out / "checkpoints").iterdir() if d.is_dir())
    assert find_checkpoint(out) == ckpts[-1]
    resumed = run_recipe(recipe, tmp_path / "resumed", reg=reg, echo=False, progress=False, resume=ckpts[0])
    c = first(rec2, "golf_load_state_dict")
    assert c[2]["steps"] == [1, 2]
    assert [x[2]["step"] for x in rec2.calls if x[0] == "golf_on_step_end"] == [3, 4]
    assert first(rec2, "golf_on_train_end")[2]["steps"] == [1, 2, 3, 4]
    assert resumed["val_bpb"] == pytest.approx(result["val_bpb"], abs=1e-6)


def test_hook_golf_register_commands(fresh_registry, capsys):
    from golf_core.cli import main

    class WithCommand:
        @hookimpl
        def golf_register(self, register):
            register(TechniqueInfo(name="cmd-plugin"))

        @hookimpl
        def golf_register_commands(self, subparsers):
            p = subparsers.add_parser("hello", help="say hello")
            p.add_argument("--name", default="golf")
            p.set_defaults(func=lambda args: print(f"hello {args.name}") or 0)

    fresh_registry.add("cmd-plugin", WithCommand())
    assert main(["hello", "--name", "world"]) == 0
    assert capsys.readouterr().out.strip() == "hello world"
