"""The plugin manager: discovery, activation, ordering, exclusivity, conflicts, options."""
from __future__ import annotations

import importlib.metadata as md
import json
import sys
import types
from types import SimpleNamespace
import zlib

import pytest
from pydantic import Field

from golf_core import Options, TechniqueInfo, hookimpl
from golf_core import plugins as P
from golf_core.cli import main
from golf_core.errors import PluginError, RecipeError
from golf_core.recipe import Recipe


class AddOpts(Options):
    value: int = Field(1, description="what to append")


def make_plugin(name, *, conflicts=(), tryfirst=False, exclusive=False, opts=AddOpts):
    """A plugin object whose golf_pre_quant appends its value to a list."""

    class Plug:
        @hookimpl
        def golf_register(self, register):
            register(TechniqueInfo(name=name, options=opts, summary=f"test plugin {name}",
                                   conflicts=list(conflicts), lineage=["#0"]))

        if tryfirst:
            @hookimpl(tryfirst=True)
            def golf_pre_quant(self, model, opts):
                return model + [name]
        else:
            @hookimpl
            def golf_pre_quant(self, model, opts):
                return model + [f"{name}:{opts.value}"]

        if exclusive:
            @hookimpl
            def golf_quantize(self, model, ctx):
                return f"quantized by {name}"

    return Plug()


def test_transforms_run_in_recipe_order_not_registration_order(fresh_registry):
    for n in ("zeta", "alpha", "mid"):
        fresh_registry.add(n, make_plugin(n))
    for order in (["alpha", "mid", "zeta"], ["zeta", "alpha", "mid"], ["mid", "zeta", "alpha"]):
        ap = P.activate(Recipe(plugins=order, options={"mid": {"value": 7}}))
        out = ap.transform("golf_pre_quant", "model", [], ctx=None)
        assert out == [f"{n}:{7 if n == 'mid' else 1}" for n in order]


def test_installed_is_not_active(fresh_registry):
    fresh_registry.add("a", make_plugin("a"))
    fresh_registry.add("b", make_plugin("b"))
    ap = P.activate(Recipe(plugins=["b"]))
    assert ap.transform("golf_pre_quant", "model", [], ctx=None) == ["b:1"]
    assert ap.providers("golf_pre_quant") == ["b"]


def test_tryfirst_is_refused(fresh_registry):
    with pytest.raises(PluginError, match="tryfirst/trylast"):
        fresh_registry.add("eager", make_plugin("eager", tryfirst=True))


def test_exclusive_hook_default_single_and_double(fresh_registry, monkeypatch):
    from golf_core import defaults

    fresh_registry.add("q1", make_plugin("q1", exclusive=True))
    fresh_registry.add("q2", make_plugin("q2", exclusive=True))
    fresh_registry.add("plain", make_plugin("plain"))
    # the core's built-in plugin is what an exclusive hook falls back to
    monkeypatch.setattr(defaults, "golf_quantize", hookimpl(lambda model, ctx: "core default"))
    assert P.activate(Recipe(plugins=["plain"])).exclusive("golf_quantize", model=None, ctx=None) == "core default"
    assert P.activate(Recipe(plugins=["q2", "plain"])).exclusive("golf_quantize", model=None, ctx=None) == "quantized by q2"
    with pytest.raises(PluginError, match="golf_quantize is exclusive but provided by q1, q2"):
        P.activate(Recipe(plugins=["q1", "plain", "q2"]))


def test_conflicts_fail_at_validation(fresh_registry):
    fresh_registry.add("x", make_plugin("x", conflicts=["y"]))
    fresh_registry.add("y", make_plugin("y"))
    P.activate(Recipe(plugins=["x"]))
    with pytest.raises(PluginError, match="'x' and 'y' conflict"):
        P.activate(Recipe(plugins=["y", "x"]))


def test_unknown_plugin_and_options_errors(fresh_registry):
    fresh_registry.add("qk-gain", make_plugin("qk-gain"))
    with pytest.raises(PluginError, match=r"unknown plugin 'qk-gian'; did you mean 'qk-gain'\?"):
        P.activate(Recipe(plugins=["qk-gian"]))
    with pytest.raises(RecipeError, match=r"unknown key 'options.qk-gain.valeu'; did you mean 'value'\?"):
        P.activate(Recipe(plugins=["qk-gain"], options={"qk-gain": {"valeu": 3}}))
    with pytest.raises(RecipeError, match=r"options.qk-gain.value: .*got 'three'"):
        P.activate(Recipe(plugins=["qk-gain"], options={"qk-gain": {"value": "three"}}))
    with pytest.raises(RecipeError, match=r"\[options.qk-gian\] names an unknown plugin; did you mean 'qk-gain'\?"):
        P.activate(Recipe(plugins=[], options={"qk-gian": {}}))
    # options of an installed but inactive plugin are allowed (ablations drop plugins)
    P.activate(Recipe(plugins=[], options={"qk-gain": {"value": 2}}))


def test_register_contract_is_enforced(fresh_registry):
    class WrongName:
        @hookimpl
        def golf_register(self, register):
            register(TechniqueInfo(name="other"))

    class Silent:
        pass

    class BadArg:
        @hookimpl
        def golf_register(self, register):
            register(TechniqueInfo(name="badarg"))

        @hookimpl
        def golf_pre_quant(self, model, not_an_arg):
            return model

    with pytest.raises(PluginError, match="registers itself as 'other'"):
        fresh_registry.add("wrong", WrongName())
    with pytest.raises(PluginError, match="does not implement golf_register"):
        fresh_registry.add("silent", Silent())
    with pytest.raises(Exception, match="not_an_arg"):
        fresh_registry.add("badarg", BadArg())
    with pytest.raises(ValueError, match="legality"):
        TechniqueInfo(name="x", legality="sort-of-legal")


def _fake_entry_points(monkeypatch, eps):
    real = md.entry_points

    def fake(**kw):
        if kw.get("group") == P.ENTRY_POINT_GROUP:
            return eps
        return real(**kw)

    monkeypatch.setattr(P.md, "entry_points", fake)


def test_broken_plugin_is_reported_and_breaks_nothing(monkeypatch, capsys):
    good = types.ModuleType("golf_test_good_plugin")
    plug = make_plugin("good")
    good.golf_register = plug.golf_register
    good.golf_pre_quant = plug.golf_pre_quant
    monkeypatch.setitem(sys.modules, "golf_test_good_plugin", good)
    eps = [md.EntryPoint(name="good", value="golf_test_good_plugin", group="golf"),
           md.EntryPoint(name="broken", value="golf_test_no_such_module_xyz", group="golf")]
    _fake_entry_points(monkeypatch, eps)
    P.set_registry(None)
    try:
        reg = P.registry()
        assert reg.plugins["good"].ok
        assert "golf_test_no_such_module_xyz" in reg.plugins["broken"].error
        assert main(["plugins", "--json"]) == 0
        rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
        assert "error" in rows["broken"] and rows["good"]["hooks"] == ["golf_pre_quant"]
        P.activate(Recipe(plugins=["good"]))  # a recipe that doesn't use it still works
        with pytest.raises(PluginError, match="plugin 'broken' failed to load: ModuleNotFoundError"):
            P.activate(Recipe(plugins=["broken"]))
        # GOLF_LOAD_PLUGINS restricts discovery; empty means none
        monkeypatch.setenv("GOLF_LOAD_PLUGINS", "good")
        assert P.PluginRegistry.discover().names() == ["good"]
        monkeypatch.setenv("GOLF_LOAD_PLUGINS", "")
        assert P.PluginRegistry.discover().names() == []
    finally:
        P.set_registry(None)


def test_trace_prints_each_hook_call_in_order(fresh_registry, monkeypatch, capsys):
    fresh_registry.add("b", make_plugin("b"))
    fresh_registry.add("a", make_plugin("a"))
    monkeypatch.setenv("GOLF_TRACE_PLUGINS", "1")
    recipe = Recipe(plugins=["b", "a"])
    ap = P.activate(recipe)
    ap.transform("golf_pre_quant", "model", [], ctx=None)
    # the core's decompression bounds its output by the recipe's declared model size
    ap.exclusive("golf_decompress", codec="zlib", data=zlib.compress(b""), ctx=SimpleNamespace(recipe=recipe))
    err = capsys.readouterr().err
    assert "[golf trace] golf_pre_quant: b, a" in err
    assert "[golf trace] golf_decompress: (core default)" in err


def test_every_hookspec_has_a_kind_and_a_docstring():
    from golf_core import hookspecs

    names = P.hook_names()
    assert sorted(P.ALL_HOOKS) == names
    for n in names:
        doc = getattr(hookspecs, n).__doc__ or ""
        kind = P.hook_kind(n)
        assert kind.capitalize() in doc or f"**{kind.capitalize()}" in doc, (n, kind)
        assert ":return:" in doc or "return" in doc.lower(), n


def test_hook_kinds_are_declared_once_and_hooks_are_typed():
    import typing

    import argparse
    from torch import Tensor, nn

    from golf_core import hookspecs
    from golf_core.context import RunContext
    from golf_core.eval.session import EvalSession
    from golf_core.options import Options
    from golf_core.quant.quantized import QuantizedModel
    from golf_core.technique import TechniqueInfo
    from golf_core.train.loop import TrainProgress
    from golf_core.train.optim import OptimizerSet

    # the tuples of golf_core.plugins are the declaration's, and no spec carries a pluggy marker
    # that the core would ignore (it calls implementations itself, in recipe order)
    assert set(P.ALL_HOOKS) == set(hookspecs.HOOK_KINDS) and len(P.ALL_HOOKS) == len(set(P.ALL_HOOKS))
    for n, kind in hookspecs.HOOK_KINDS.items():
        spec = getattr(hookspecs, n)
        assert not getattr(spec, "golf_spec", {}).get("firstresult"), n
        assert f"**{kind.capitalize()}** hook: {hookspecs.KIND_RULES[kind]}" in spec.__doc__, n
    ns = dict(argparse=argparse, Tensor=Tensor, nn=nn, RunContext=RunContext, EvalSession=EvalSession,
              Options=Options, QuantizedModel=QuantizedModel, TechniqueInfo=TechniqueInfo,
              TrainProgress=TrainProgress, OptimizerSet=OptimizerSet)
    for n in hookspecs.HOOK_KINDS:
        hints = typing.get_type_hints(getattr(hookspecs, n), localns=ns)
        for arg in ("ctx", "opts", "model", "optimizers", "session", "quantized", "progress"):
            if arg in hints:
                assert hints[arg] is not typing.Any, (n, arg)
        if "ctx" in hints:
            assert hints["ctx"] is RunContext and hints["opts"] is Options, n
    with pytest.raises(ValueError, match="unknown hook kind"):
        hookspecs.golf_hook("sometimes")
