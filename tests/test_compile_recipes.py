"""Every shipped recipe's training step traces under ``torch.compile(fullgraph=True)`` with zero
graph breaks, one graph per layer layout (looping off / on), and the training loop builds those
graphs in its compile warmup, before the clock starts.

Dynamo runs with a counting ``eager`` backend: tracing is what breaks graphs, so no inductor
code generation (C++ on CPU) is needed, and each recipe costs a few seconds at ``--tiny`` size.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch._dynamo.testing import CompileCounter

from golf_core.context import RunContext
from golf_core.run.build import build_model
from golf_core.plugins import activate, registry
from golf_core.recipe import load_recipe

REPO = Path(__file__).resolve().parent.parent
RECIPES = sorted((REPO / "recipes").glob("*.toml"))
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised inside torch.jit by dynamo


def _tiny_model(path: Path):
    recipe = load_recipe(path, tiny=True)
    reg = registry()
    missing = [n for n in recipe.plugins if n not in reg.plugins or not reg.plugins[n].ok]
    if missing:
        pytest.skip(f"plugins of {path.name} not installed: {', '.join(missing)} (run scripts/setup.sh)")
    plugins = activate(recipe)
    ctx = RunContext(recipe=recipe, plugins=plugins)
    torch.manual_seed(0)
    model = build_model(recipe, plugins, ctx)
    model.train()
    return recipe, model


def _break_reasons(model, x, y) -> str:
    """Every graph break dynamo finds in one forward, as text (for the failure message)."""
    torch._dynamo.reset()
    explained = torch._dynamo.explain(model)(x, y)
    return "; ".join(f"{r.reason} at {r.user_stack[-1] if r.user_stack else '?'}" for r in explained.break_reasons)


def test_every_recipe_is_checked():
    """The parametrization below sees every shipped recipe (a new recipe is covered by default)."""
    assert {p.stem for p in RECIPES} >= {"baseline", "demo", "pr1394", "pr1413", "pr1423"}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_compiles_to_one_graph_per_layout(path):
    """Forward + backward of the tiny model under fullgraph compile: no graph break, exactly one graph
    per layout (off, on, and back off reuses the first), and the same loss as eager."""
    recipe, model = _tiny_model(path)
    seq = recipe.train.train_seq_len
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, recipe.data.vocab_size, (2, seq), generator=g)
    y = torch.randint(0, recipe.data.vocab_size, (2, seq), generator=g)
    layouts = [False, True] if model.schedule.has_loop else [False]
    # a document-masked model (varlen-attn) gets its cu_seqlens from the host, as the training loop passes them
    cu = model.documents(x)[0] if getattr(model, "document_mask", None) is not None else None
    torch._dynamo.reset()
    counter = CompileCounter()
    compiled = torch.compile(model, fullgraph=True, dynamic=False, backend=counter)
    for looping in layouts + [False]:
        model.looping_active = looping
        try:
            loss = compiled(x, y) if cu is None else compiled(x, y, cu_seqlens=cu)
        except torch._dynamo.exc.Unsupported as e:  # a graph break under fullgraph=True
            model.zero_grad(set_to_none=True)
            pytest.fail(f"{path.name} (looping {looping}): graph break: {str(e).splitlines()[0]} | all breaks: "
                        f"{_break_reasons(model, x, y)}")
        loss.backward()
        with torch.no_grad():
            torch.testing.assert_close(loss.detach(), model(x, y) if cu is None else model(x, y, cu_seqlens=cu),
                                       rtol=1e-6, atol=1e-6)
    assert counter.frame_count == len(layouts), (
        f"{path.name}: {counter.frame_count} graphs for {len(layouts)} layout(s): a recompile beyond the looping switch")
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad and p.numel())
    torch._dynamo.reset()


def test_training_loop_warms_every_layout_before_the_clock(monkeypatch, tmp_path):
    """``train()`` with compile on (counting eager backend) on tiny pr1394: both layouts' graphs
    exist when the clock starts, looping switches on during the timed steps, and nothing is
    compiled after that (``TrainResult.compiled_in_clock == 0``)."""
    from golf_core.train import loop
    from golf_core.train.testing import RecordingLog, synthetic_shards

    recipe = load_recipe(REPO / "recipes" / "pr1394.toml", tiny=True,
                         overrides=["train.iterations=4", "train.warmup_steps=1", "train.log_every=1",
                                    "train.compile=on", "train.train_batch_tokens=2048", "model.num_layers=4"])
    reg = registry()
    missing = [n for n in recipe.plugins if n not in reg.plugins or not reg.plugins[n].ok]
    if missing:
        pytest.skip(f"plugins of pr1394.toml not installed: {', '.join(missing)}")
    plugins = activate(recipe)
    ctx = RunContext(recipe=recipe, plugins=plugins, log=RecordingLog())
    ctx._data = synthetic_shards(tmp_path, recipe.data.vocab_size, train_tokens=40_000)
    torch.manual_seed(0)
    model = build_model(recipe, plugins, ctx)

    torch._dynamo.reset()
    counter, others = CompileCounter(), CompileCounter()  # the model's graphs; Muon's Newton-Schulz ones
    real_compile = torch.compile

    def counting_compile(fn, **kw):
        kw["backend"] = counter if isinstance(fn, torch.nn.Module) else others
        return real_compile(fn, **kw)

    at_clock_start: list[int] = []
    real_start = loop.TrainClock.start

    def start(self):
        at_clock_start.append(counter.frame_count)
        return real_start(self)

    monkeypatch.setattr(torch, "compile", counting_compile)
    monkeypatch.setattr(loop.TrainClock, "start", start)
    res = loop.train(model, ctx)
    torch._dynamo.reset()

    assert res.steps == 4
    assert any(line.startswith("layer_loop:enabled step:2") for line in ctx.log.lines), ctx.log.lines
    assert at_clock_start == [2], "the compile warmup did not build both layouts' graphs before the clock"
    assert counter.frame_count == 2, "a graph was compiled while the clock ran"
    assert others.frame_count >= 1, "Muon's compiled Newton-Schulz never ran"
    assert (res.compiled_graphs, res.compiled_in_clock) == (2 + others.frame_count, 0)
    assert not any(line.startswith("WARNING: torch.compile built") for line in ctx.log.lines)


def test_a_graph_compiled_in_the_clock_is_reported(monkeypatch, tmp_path):
    """Without compile warmup (``warmup_steps = 0``) the looped layout compiles inside the timed
    loop: the loop counts it and logs a warning, so a GPU bench cannot silently time a compile."""
    from golf_core.train import loop
    from golf_core.train.testing import RecordingLog, synthetic_shards

    recipe = load_recipe(REPO / "recipes" / "pr1394.toml", tiny=True,
                         overrides=["train.iterations=2", "train.warmup_steps=0", "train.log_every=1",
                                    "train.compile=on", "train.train_batch_tokens=1024", "model.num_layers=3"])
    if "depth-recurrence" not in registry().plugins:
        pytest.skip("golf-depth-recurrence is not installed")
    plugins = activate(recipe.with_plugins(["depth-recurrence"]))
    ctx = RunContext(recipe=recipe, plugins=plugins, log=RecordingLog())
    ctx._data = synthetic_shards(tmp_path, recipe.data.vocab_size, train_tokens=20_000)
    model = build_model(recipe, plugins, ctx)
    counter, others = CompileCounter(), CompileCounter()
    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: real_compile(
        fn, **{**kw, "backend": counter if isinstance(fn, torch.nn.Module) else others}))
    torch._dynamo.reset()
    res = loop.train(model, ctx)
    torch._dynamo.reset()
    assert counter.frame_count == 2
    assert (res.compiled_graphs, res.compiled_in_clock) == (0, 2 + others.frame_count)
    assert any(line.startswith(f"WARNING: torch.compile built {res.compiled_in_clock} graph(s)") for line in ctx.log.lines)
