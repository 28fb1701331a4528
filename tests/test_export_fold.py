"""The fold pass (``golf_core.export.fold``): on small synthetic modules it folds the reads the
rule proves, refuses the ones it cannot, drops the branches the values rule out and keeps what
the code computes; on a record recipe the script no longer carries the features it never uses."""
from __future__ import annotations

import ast
import textwrap
from types import SimpleNamespace

import pytest

from golf_core.export.fold import CTX, RECIPE, Facts, Obj, fold_sources
from golf_core.scripted import refused_override

PLUGIN = "golf_toy.plugin"
OPTS = {"flag": False, "k": 3, "mode": "fast", "scale": 0.5, "name": None}


def _facts(**opts) -> Facts:
    f = Facts()
    f.add(CTX, SimpleNamespace(), {"recipe": Obj(RECIPE)})
    f.add(RECIPE, SimpleNamespace(), {"train": Obj("recipe.train"), "tiny": False})
    f.add("recipe.train", SimpleNamespace(), {"iterations": 7}, "train")
    f.add("opts:toy", SimpleNamespace(), {**OPTS, **opts}, "options.toy")
    f.hook_modules[PLUGIN] = "opts:toy"
    return f


def _fold(src: str, extra: dict[str, str] = (), **opts) -> tuple[str, dict]:
    sources = {PLUGIN: textwrap.dedent(src), **dict(extra)}
    out, folded = fold_sources(sources, _facts(**opts))
    return out[PLUGIN], folded


def _run(src: str, fn: str, *args):
    ns: dict = {}
    exec(compile(src, "<toy>", "exec"), ns)
    return ns[fn](*args)


HOOK = """
def big(x):
    return x * 100

def golf_quantize(model, ctx, opts):
    if opts.flag:
        return big(model)
    if opts.mode == "slow" or opts.name is not None:
        return -1
    y = model + opts.k if opts.scale > 0 else model
    return (opts.flag and model) or y, ctx.recipe.train.iterations, ctx.recipe.tiny
"""


def test_a_hooks_options_and_context_are_folded_and_dead_branches_dropped():
    out, folded = _fold(HOOK)
    assert folded == {"options.toy.flag": False, "options.toy.mode": "fast", "options.toy.name": None,
                      "options.toy.k": 3, "options.toy.scale": 0.5, "train.iterations": 7, "tiny": False}
    assert "opts." not in out and "ctx.recipe" not in out
    assert "big(model)" not in out and "-1" not in out  # the branches the values rule out
    ref = SimpleNamespace(**OPTS)
    ctx = SimpleNamespace(recipe=SimpleNamespace(train=SimpleNamespace(iterations=7), tiny=False))
    for model in (0, 2, -5):  # the folded code computes what the original does
        assert _run(out, "golf_quantize", model, None, None) == _run(textwrap.dedent(HOOK), "golf_quantize", model, ctx, ref)


def test_boolean_tests_keep_pythons_semantics():
    src = """
    def golf_x(a, opts):
        return (opts.k and a), (a and opts.k), (opts.flag or a), (not opts.flag and a), (opts.name or "d"), \\
            (opts.k in (1, 3)), (1 < opts.k <= 3), (opts.mode != "fast" or a)
    """
    out, _ = _fold(src)
    ref = SimpleNamespace(**OPTS)
    for a in (0, "", 5, None, [1]):
        assert _run(out, "golf_x", a, None) == _run(textwrap.dedent(src), "golf_x", a, ref)
    assert "a and 3" in out  # ``x and K`` keeps ``x``: its value may be the result


def test_options_reach_helpers_whose_every_call_passes_them():
    src = """
    def helper(x, o, n=1):
        if o.flag:
            return dead(x)
        return x * o.k

    def other(o):
        return o.k

    def golf_quantize(model, ctx, opts):
        t = ctx.recipe.train
        u, m = (ctx.recipe.train, model)
        return helper(model, opts), other(o=opts), t.iterations, u.iterations

    def golf_summary(result, ctx, opts):
        return other(opts)
    """
    out, folded = _fold(src)
    assert "dead(" not in out and "x * 3" in out and "return 3" in out and ".iterations" not in out
    assert folded["train.iterations"] == 7


@pytest.mark.parametrize("case,src", [
    ("a call passes something else", """
    def helper(o):
        return o.k
    def golf_quantize(model, ctx, opts):
        return helper(opts) + helper(model)
    """),
    ("the helper is used as a value", """
    def helper(o):
        return o.k
    def golf_quantize(model, ctx, opts):
        return helper(opts), map(helper, [opts])
    """),
    ("a call splats its arguments", """
    def helper(o):
        return o.k
    def golf_quantize(model, ctx, opts):
        return helper(*[opts])
    """),
    ("a module imported in a function names it as a value", """
    def helper(o):
        return o.k
    def golf_quantize(model, ctx, opts):
        from golf_toy import plugin as me
        return helper(opts), me.helper
    """),
    ("the parameter is rebound", """
    def golf_quantize(model, ctx, opts):
        if model:
            opts = model
        return opts.k
    """),
    ("a nested scope rebinds it", """
    def golf_quantize(model, ctx, opts):
        return [opts.k for opts in model]
    """),
    ("the hook is also called directly", """
    def golf_quantize(model, ctx, opts):
        return opts.k
    def golf_summary(result, ctx, opts):
        return golf_quantize(1, ctx, result)
    """),
    ("the field is stored somewhere", """
    def golf_quantize(model, ctx, opts):
        return opts.k
    def reset(x):
        x.k = 5
    """),
    ("a setattr of a computed name", """
    def golf_quantize(model, ctx, opts):
        return opts.k
    def reset(x, name):
        setattr(x, name, 5)
    """),
    ("not a plugin's hook module", None),
])
def test_reads_it_cannot_prove_are_not_folded(case, src):
    if src is None:
        out, folded = fold_sources({"golf_other.plugin": "def golf_quantize(model, ctx, opts):\n    return opts.k\n"},
                                   _facts())
        assert folded == {} and "opts.k" in out["golf_other.plugin"], case
        return
    out, folded = _fold(src)
    assert "options.toy.k" not in folded and ("o.k" in out or "opts.k" in out), case


def test_self_attributes_set_once_in_init_are_known():
    src = """
    class Trainer:
        def __init__(self, ctx):
            self.t = ctx.recipe.train
            self.n = 0
        def steps(self):
            return self.t.iterations

    class Other:
        def __init__(self, t):
            self.t = t

    def golf_on_train_start(model, ctx, opts):
        return Trainer(ctx).steps()
    """
    out, folded = _fold(src)
    assert "return 7" in out and folded == {"train.iterations": 7}
    # a second store of ``t`` on a Trainer (not on an Other's self) makes it unknown
    out, folded = _fold(textwrap.dedent(src) + "\ndef poke(tr):\n    tr.t = None\n")
    assert "self.t.iterations" in out and folded == {}


def test_a_folded_script_refuses_overrides_but_of_the_keys_never_folded():
    scripted = "IN_SCRIPT = False\nFOLDED = False\n"
    out, folded = fold_sources({PLUGIN: "def golf_q(ctx, opts):\n    return opts.k\n", "golf_core.scripted": scripted},
                               _facts())
    ns: dict = {}
    exec(out["golf_core.scripted"], ns)
    assert ns["FOLDED"] is True and folded == {"options.toy.k": 3}
    for ok in ("train.seed=3", "data.root=/x", "train.device=cpu", "model.fused_kernels=off"):
        assert refused_override([ok], True) is None, ok
    for key in ("options.toy.k", "options.toy", "plugins", "train.iterations", "tiny"):
        assert refused_override([f"{key}=4"], True) == key
    assert refused_override(["options.toy.k=4"], False) is None  # an unfolded script refuses nothing


def test_every_folded_module_still_parses_and_unfolded_ones_are_untouched():
    other = "def f(opts):\n    return opts.k  # comment kept\n"
    out, _ = fold_sources({PLUGIN: textwrap.dedent(HOOK), "golf_other.mod": other}, _facts())
    assert out["golf_other.mod"] == other
    ast.parse(out[PLUGIN])


def test_pr1394s_script_drops_the_gptq_features_it_never_switches_on():
    from golf_core.export.bundle import plugin_refs, tree_for
    from golf_core.export.compact import build_compact
    from golf_core.plugins import activate
    from golf_core.recipe import load_recipe

    recipe = load_recipe("pr1394")
    plugins = plugin_refs(activate(recipe))
    script = build_compact(tree_for(plugins, {}), recipe.to_toml(), plugins)
    src = script.source
    # budget fit, Hadamard rotation, AR calibration: off in #1394
    for gone in ("def fit_clip_sigmas", "class HadamardTransform", "def generate_sequences"):
        assert gone not in src, gone
    # a baked script takes no --set; a validating one refuses --set of what it may not read (FOLDED)
    assert "golf_core.scripted" not in script.modules or "=True" in script.modules["golf_core.scripted"]
    assert "def gptq_quantize_prepared" in src


RUNTIME = """
def embedded_recipe(text):
    return text

def main(recipe_toml):
    try:
        recipe = embedded_recipe(recipe_toml)
    except ValueError:
        return 2
    return run(recipe)
"""
CONTEXT = """
from dataclasses import dataclass

@dataclass
class Ctx:
    recipe: object
    rank: int = 0

def run(recipe):
    return steps(Ctx(recipe=recipe))

def steps(c):
    if c.recipe.train.iterations > 5:
        return "long"
    return "short"
"""


def test_the_entrys_recipe_reaches_every_object_holding_a_recipe():
    sources = {"golf_core.export.runtime": RUNTIME, "golf_toy.ctx": CONTEXT}
    out, folded = fold_sources(sources, _facts())
    assert folded == {"train.iterations": 7} and "def steps(c):\n    return 'long'" in out["golf_toy.ctx"]
    # another object built with some other recipe: ``x.recipe`` is no longer the run's
    more = CONTEXT + "\ndef probe(other):\n    return steps(Ctx(recipe=other))\n"
    out, folded = fold_sources({**sources, "golf_toy.ctx": more}, _facts())
    assert folded == {} and "c.recipe.train.iterations" in out["golf_toy.ctx"]
    # a positional construction could pass anything
    more = CONTEXT + "\ndef probe():\n    return steps(Ctx(None))\n"
    assert fold_sources({**sources, "golf_toy.ctx": more}, _facts())[1] == {}


CONFIG = """
from dataclasses import dataclass

@dataclass
class Config:
    k: int = 1
    flag: bool = True
    inner: object = None

    def scaled(self, x):
        return x * self.k if self.flag else dead(x)

@dataclass
class Inner:
    mode: str = "a"

def config_from(opts):
    return Config(k=opts.k, flag=not opts.flag, inner=Inner(mode=opts.mode))

class Quantizer:
    def __init__(self, config):
        self.config = config

    def run(self, x):
        c = self.config
        if c.inner.mode == "slow":
            return dead(x)
        return self.config.scaled(x) + c.k

def golf_quantize(model, ctx, opts):
    return Quantizer(config_from(opts)).run(model)
"""


def test_objects_built_from_known_values_are_known():
    out, folded = _fold(CONFIG)
    assert "dead(" not in out and "x * 3" in out and "+ 3" in out
    assert set(folded) == {"options.toy.k", "options.toy.flag", "options.toy.mode"}
    ref = SimpleNamespace(**OPTS)
    for x in (0, 2, 5):
        assert _run(out, "golf_quantize", x, None, None) == _run(textwrap.dedent(CONFIG), "golf_quantize", x, None, ref)


@pytest.mark.parametrize("change", [
    "\ndef poke(c):\n    c.k = 9\n",  # a field stored on some object
    "\ndef other(x):\n    return Quantizer(x).run(1)\n",  # built with something unknown too
])
def test_objects_built_from_known_values_are_refused_when_unprovable(change):
    out, folded = _fold(textwrap.dedent(CONFIG) + change)
    assert "x * 3" not in out and ("self.k" in out or "self.config.scaled" in out)


def test_a_dataclass_with_post_init_is_not_known():
    src = textwrap.dedent(CONFIG).replace("    def scaled(self, x):", "    def __post_init__(self):\n        self.k = 0\n\n    def scaled(self, x):")
    out, _ = _fold(src)
    assert "x * 3" not in out



def test_tests_decided_by_a_constant_keep_what_runs_before_it():
    src = """
    calls = []

    def seen(x):
        calls.append(x)
        return x

    def golf_x(a, opts):
        lam = opts.k
        if seen(a) and lam > 5:
            return "dead"
        if seen(a) and opts.flag is False:
            return "kept"
        return "end"
    """
    out, folded = _fold(src)
    assert "'dead'" not in out and "lam > 5" not in out
    assert "if seen(a):" in out  # ``x and True`` tests as ``x``
    ref = SimpleNamespace(**OPTS)
    for a in (0, 1):
        ns_a, ns_b = {}, {}
        exec(out, ns_a)
        exec(textwrap.dedent(src), ns_b)
        assert ns_a["golf_x"](a, None) == ns_b["golf_x"](a, ref) and ns_a["calls"] == ns_b["calls"]


def test_another_objects_namespace_turns_folding_off():
    src = """
    def golf_quantize(model, ctx, opts):
        return opts.k

    def poke(x):
        x.__dict__.update(k=9)
    """
    out, folded = _fold(src)
    assert folded == {} and "opts.k" in out
