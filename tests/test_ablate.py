"""golf ablate: variant expansion, validation before running, a fake-runner ablation, resume."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from golf_core import Options, TechniqueInfo, hookimpl
from golf_core import ablate as A
from golf_core.errors import GolfError, PluginError, RecipeError

scipy_stats = pytest.importorskip("scipy.stats")


# ------------------------------------------------------------------------------------------
# expansion (pure)
# ------------------------------------------------------------------------------------------


def names_plugins(vs):
    return [(v.name, v.plugins) for v in vs]


def test_one_at_a_time_starts_without_every_toggled_plugin():
    vs = A.expand_variants(["x", "a", "y"], ["a", "b"], "one-at-a-time")
    assert names_plugins(vs) == [
        ("base", ["x", "y"]),
        ("+a", ["x", "a", "y"]),      # a keeps its place in the recipe
        ("+b", ["x", "y", "b"]),      # b is not in the recipe: appended
    ]
    assert vs[0].is_base and not vs[1].is_base
    assert [v.toggled_on for v in vs] == [[], ["a"], ["b"]]


def test_leave_one_out_starts_with_every_toggled_plugin():
    vs = A.expand_variants(["x", "a", "y"], ["b", "a", "c"], "leave-one-out")
    # canonical order: recipe order, then the missing toggles in --toggle order (b, c)
    assert names_plugins(vs) == [
        ("base", ["x", "a", "y", "b", "c"]),
        ("-b", ["x", "a", "y", "c"]),
        ("-a", ["x", "y", "b", "c"]),
        ("-c", ["x", "a", "y", "b"]),
    ]


def test_grid_is_every_subset_smallest_first():
    vs = A.expand_variants(["c"], ["a", "c", "b"], "grid")
    assert names_plugins(vs) == [
        ("base", []),
        ("+c", ["c"]), ("+a", ["a"]), ("+b", ["b"]),
        ("+c+a", ["c", "a"]), ("+c+b", ["c", "b"]), ("+a+b", ["a", "b"]),
        ("+c+a+b", ["c", "a", "b"]),
    ]
    assert len(A.expand_variants([], list("abcd"), "grid")) == 16


def test_slugs_are_distinct_directory_names():
    vs = A.expand_variants([], ["qk-gain", "ema"], "grid")
    assert [v.slug for v in vs] == ["base", "plus_qk-gain", "plus_ema", "plus_qk-gain_plus_ema"]
    assert [v.slug for v in A.expand_variants(["ema"], ["ema"], "leave-one-out")] == ["base", "minus_ema"]


def test_bad_toggles_and_modes():
    assert A.parse_toggles("a, b,c") == ["a", "b", "c"]
    assert A.parse_toggles(["a", "b,c"]) == ["a", "b", "c"]
    for bad in ("", "a,,b", "a,b,a"):
        with pytest.raises(GolfError):
            A.parse_toggles(bad)
    with pytest.raises(GolfError, match="--mode"):
        A.expand_variants([], ["a"], "pairs")
    with pytest.raises(GolfError):
        A.expand_variants([], [], "grid")


def test_variant_overrides_are_toml_for_golf_run():
    ov = A.variant_overrides(["model.num_layers=2"], ["qk-gain", "ema"], 1338)
    assert ov == ["model.num_layers=2", 'plugins=["qk-gain", "ema"]', "train.seed=1338"]


# ------------------------------------------------------------------------------------------
# planning with real recipes and in-process plugins
# ------------------------------------------------------------------------------------------


class NoOpts(Options):
    pass


def make_plugin(name, conflicts=()):
    class Plug:
        @hookimpl
        def golf_register(self, register):
            register(TechniqueInfo(name=name, options=NoOpts, summary=f"test plugin {name}",
                                   conflicts=list(conflicts)))

    return Plug()


@pytest.fixture
def plugins_abc(fresh_registry):
    fresh_registry.add("a", make_plugin("a"))
    fresh_registry.add("b", make_plugin("b"))
    fresh_registry.add("c", make_plugin("c", conflicts=["b"]))
    fresh_registry.add("d", make_plugin("d"))
    return fresh_registry


@pytest.fixture
def recipe_file(tmp_path):
    p = tmp_path / "r.toml"
    p.write_text('plugins = ["d", "a"]\n\n[train]\nseed = 7\niterations = 5\n\n[meta]\nsource = "test"\n')
    return p


def test_plan_resolves_every_run(plugins_abc, recipe_file, tmp_path):
    plan = A.plan_ablation(recipe_file, ["a", "b"], tmp_path / "out", mode="leave-one-out", n_seeds=3,
                           sets=["train.iterations=3"])
    assert plan.seeds == [7, 8, 9]
    assert [v.name for v in plan.variants] == ["base", "-a", "-b"]
    assert len(plan.runs) == 9
    # base first, seeds in order inside each variant
    assert [(r.variant.name, r.seed) for r in plan.runs[:4]] == [("base", 7), ("base", 8), ("base", 9), ("-a", 7)]
    for r in plan.runs:
        assert r.recipe.plugins == r.variant.plugins
        assert r.recipe.train.seed == r.seed and r.recipe.train.iterations == 3
        assert r.run_dir == tmp_path / "out" / r.variant.slug / f"seed{r.seed}"
    assert plan.runs_of(plan.variants[1])[0].recipe.plugins == ["d", "b"]
    cmd = A.run_command(plan, plan.runs[3])
    assert "--set 'plugins=[\"d\", \"b\"]'" in cmd and "--set train.seed=7" in cmd and "--set train.iterations=3" in cmd


def test_user_seed_override_moves_all_seeds(plugins_abc, recipe_file, tmp_path):
    plan = A.plan_ablation(recipe_file, ["b"], tmp_path / "o", n_seeds=2, sets=["train.seed=100"])
    assert plan.seeds == [100, 101]
    assert sorted({r.recipe.train.seed for r in plan.runs}) == [100, 101]


def test_one_invalid_variant_stops_before_anything_runs(plugins_abc, recipe_file, tmp_path):
    calls = []
    # grid over b and c: variant +b+c holds two conflicting plugins
    with pytest.raises(PluginError, match=r"variant '\+b\+c'.*conflict"):
        plan = A.plan_ablation(recipe_file, ["b", "c"], tmp_path / "out", mode="grid", n_seeds=2)
        A.run_ablation(plan, runner=lambda r, d: calls.append(d))
    assert calls == [] and not (tmp_path / "out").exists()
    # an unknown toggled plugin is named, with the variant
    with pytest.raises(PluginError, match=r"variant '\+bb'.*unknown plugin 'bb'"):
        A.plan_ablation(recipe_file, ["bb"], tmp_path / "out")
    # a bad --set fails for the base already
    with pytest.raises(RecipeError, match="num_layerz"):
        A.plan_ablation(recipe_file, ["b"], tmp_path / "out", sets=["model.num_layerz=3"])
    with pytest.raises(GolfError, match="--seeds"):
        A.plan_ablation(recipe_file, ["b"], tmp_path / "out", n_seeds=0)


# ------------------------------------------------------------------------------------------
# running with a fake runner
# ------------------------------------------------------------------------------------------

EFFECT = {"a": -0.020, "b": +0.0004, "d": 0.0}
NOISE = {7: 0.0, 8: 0.0011, 9: -0.0007}
VAL_TOKENS, VAL_BYTES = 10_000, 24_000


def fake_bpb(plugins, seed):
    return 1.30 + sum(EFFECT.get(p, 0.0) for p in plugins) + NOISE[seed] * (0.7 + 0.3 * len(plugins) + ("b" in plugins))


class FakeRunner:
    """Writes a run directory the way `golf run` does; optionally crashes after k runs."""

    def __init__(self, crash_after=None):
        self.calls = []
        self.crash_after = crash_after

    def __call__(self, recipe, run_dir):
        if self.crash_after is not None and len(self.calls) >= self.crash_after:
            raise KeyboardInterrupt("killed")
        self.calls.append((list(recipe.plugins), recipe.train.seed))
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        bpb = fake_bpb(recipe.plugins, recipe.train.seed)
        with open(run_dir / "metrics.jsonl", "w") as fh:
            for step in (0, 10, 20):
                fh.write(json.dumps({"event": "train", "step": step, "train_loss": 5.0 - step / 10}) + "\n")
                fh.write(json.dumps({"event": "val", "step": step, "val_bpb": bpb + 0.5 / (1 + step)}) + "\n")
            fh.write(json.dumps({"event": "val", "phase": "final", "step": 20, "val_bpb": bpb}) + "\n")
        result = {
            "val_bpb": bpb, "val_loss": bpb * math.log(2) * VAL_BYTES / VAL_TOKENS, "pre_quant_val_bpb": bpb - 0.01,
            "steps": 20, "train_seconds": 1.5, "eval_seconds": 0.5, "code_bytes": 1000,
            "model_bytes": 5000 + 100 * len(recipe.plugins), "artifact_bytes": 6000 + 100 * len(recipe.plugins),
            "under_cap": True, "plugins": list(recipe.plugins), "legality": {}, "val_tokens": VAL_TOKENS,
            "val_bytes": VAL_BYTES, "recipe_sha256": recipe.sha256(), "seed": recipe.train.seed,
        }
        (run_dir / "result.json").write_text(json.dumps(result))
        return result


def _plan(recipe_file, out, **kw):
    kw.setdefault("mode", "one-at-a-time")
    kw.setdefault("n_seeds", 3)
    return A.plan_ablation(recipe_file, ["a", "b"], out, **kw)


def test_fake_ablation_writes_four_files_with_correct_statistics(plugins_abc, recipe_file, tmp_path):
    out = tmp_path / "abl"
    runner = FakeRunner()
    lines = []
    summary = A.run_ablation(_plan(recipe_file, out), runner=runner, log=lines.append)
    for name in ("ablation.json", "ablation.md", "ablation.png", "curves.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (out / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # base first, then each variant, seeds in order
    assert runner.calls[:3] == [(["d"], 7), (["d"], 8), (["d"], 9)]
    assert runner.calls[3:] == [(["d", "a"], s) for s in (7, 8, 9)] + [(["d", "b"], s) for s in (7, 8, 9)]
    # progress lines: which run/variant of how many, elapsed, eta
    assert any("run 4/9" in m and "variant 2/3 +a" in m and "elapsed" in m and "eta" in m for m in lines)

    data = json.loads((out / "ablation.json").read_text())
    assert data["variants"][1]["mean"] == pytest.approx(summary["variants"][1]["mean"])
    assert data["complete"] and data["mode"] == "one-at-a-time" and data["seeds"] == [7, 8, 9]
    by = {v["name"]: v for v in data["variants"]}
    assert list(by) == ["base", "+a", "+b"]
    base_vals = [fake_bpb(["d"], s) for s in (7, 8, 9)]
    margin = 0.005 * VAL_TOKENS / (VAL_BYTES * math.log(2))
    assert data["bar"]["margin_bpb"] == pytest.approx(margin, rel=1e-12)
    for name, plugins in (("+a", ["d", "a"]), ("+b", ["d", "b"])):
        v = by[name]
        vals = [fake_bpb(plugins, s) for s in (7, 8, 9)]
        assert v["plugins"] == plugins and v["seeds"] == [7, 8, 9]
        assert v["val_bpb"] == pytest.approx(vals, abs=0)
        assert v["mean"] == pytest.approx(np.mean(vals), rel=1e-13)
        assert v["std"] == pytest.approx(np.std(vals, ddof=1), rel=1e-10)
        assert v["delta_bpb"] == pytest.approx(np.mean(vals) - np.mean(base_vals), rel=1e-9, abs=1e-14)
        assert v["delta_nats"] == pytest.approx(v["delta_bpb"] * math.log(2) * VAL_BYTES / VAL_TOKENS, rel=1e-12)
        ref = scipy_stats.ttest_ind(vals, base_vals, equal_var=False)
        assert v["t"] == pytest.approx(ref.statistic, rel=1e-9)
        assert v["p"] == pytest.approx(ref.pvalue, rel=1e-8)
        bar = scipy_stats.ttest_ind(np.asarray(base_vals) - margin, vals, equal_var=False, alternative="greater")
        assert v["p_bar"] == pytest.approx(bar.pvalue, rel=1e-8, abs=1e-300)
        assert v["passes_bar"] == bool(bar.pvalue < 0.01)
        rel = scipy_stats.ttest_rel(vals, base_vals)
        assert v["t_paired"] == pytest.approx(rel.statistic, rel=1e-9)
        assert v["p_paired"] == pytest.approx(rel.pvalue, rel=1e-8, abs=1e-300)
        assert v["artifact_bytes"] == 6000 + 100 * len(plugins)
        assert v["train_seconds"] == pytest.approx(1.5) and v["eval_seconds"] == pytest.approx(0.5)
    assert by["+a"]["passes_bar"] is True and by["+b"]["passes_bar"] is False
    assert by["base"]["delta_bpb"] == 0.0 and by["base"]["p"] is None and by["base"]["passes_bar"] is None
    assert len(data["runs"]) == 9 and all(r["status"] == "done" for r in data["runs"])

    md = (out / "ablation.md").read_text()
    assert "| variant | plugins |" in md and "`+a`" in md and "**yes**" in md and "0.005 nats" in md
    assert md.count("\n| ") == 1 + 3  # header + base + 2 variants (separator line starts with "|---")


def test_killed_half_way_then_rerun_skips_finished_runs(plugins_abc, recipe_file, tmp_path):
    out = tmp_path / "abl"
    first = FakeRunner(crash_after=4)
    with pytest.raises(KeyboardInterrupt):
        A.run_ablation(_plan(recipe_file, out), runner=first, log=lambda m: None)
    assert len(first.calls) == 4
    partial = json.loads((out / "ablation.json").read_text())
    assert not partial["complete"]
    assert [r["status"] for r in partial["runs"]].count("done") == 4
    assert not (out / "ablation.md").exists()
    # a run that died mid-way leaves an incomplete directory (no result.json)
    torn = out / "plus_a" / "seed8"
    torn.mkdir(parents=True)
    (torn / "train.log").write_text("step:3\n")
    (torn / "result.json").write_text('{"val_bpb": 1.2')  # torn write

    second = FakeRunner()
    lines = []
    summary = A.run_ablation(_plan(recipe_file, out), runner=second, log=lines.append)
    # only the 5 unfinished runs ran, in order
    assert second.calls == [(["d", "a"], 8), (["d", "a"], 9)] + [(["d", "b"], s) for s in (7, 8, 9)]
    assert sum("already complete" in m for m in lines) == 4
    assert (out / "plus_a" / "seed8.incomplete" / "train.log").exists()
    assert summary["complete"]
    statuses = [r["status"] for r in summary["runs"]]
    assert statuses == ["reused"] * 4 + ["done"] * 5
    for name in ("ablation.json", "ablation.md", "ablation.png", "curves.png"):
        assert (out / name).is_file()

    # identical to an uninterrupted ablation
    ref = A.run_ablation(_plan(recipe_file, tmp_path / "ref"), runner=FakeRunner(), log=lambda m: None)
    for v, w in zip(summary["variants"], ref["variants"]):
        assert v["val_bpb"] == w["val_bpb"] and v["p"] == w["p"]

    # a third invocation runs nothing
    third = FakeRunner()
    A.run_ablation(_plan(recipe_file, out), runner=third, log=lambda m: None)
    assert third.calls == []


def test_rerun_with_other_settings_into_same_folder_is_refused(plugins_abc, recipe_file, tmp_path):
    out = tmp_path / "abl"
    A.run_ablation(_plan(recipe_file, out, n_seeds=2), runner=FakeRunner(), log=lambda m: None, report=False)
    with pytest.raises(A.AblationError, match="fresh --out"):
        A.run_ablation(_plan(recipe_file, out, n_seeds=2, sets=["train.iterations=9"]),
                       runner=FakeRunner(), log=lambda m: None)
    # result.json of another plugin list in the expected place is refused too
    (out / "ablation.json").unlink()
    rd = out / "plus_b" / "seed7"
    res = json.loads((rd / "result.json").read_text())
    res["plugins"] = ["b"]
    (rd / "result.json").write_text(json.dumps(res))
    with pytest.raises(A.AblationError, match="plugins"):
        A.run_ablation(_plan(recipe_file, out, n_seeds=2), runner=FakeRunner(), log=lambda m: None)


def test_runner_without_result_json_uses_returned_dict(plugins_abc, recipe_file, tmp_path):
    def runner(recipe, run_dir):
        r = FakeRunner()(recipe, run_dir)
        (Path(run_dir) / "result.json").unlink()
        return r

    out = tmp_path / "abl"
    A.run_ablation(_plan(recipe_file, out, n_seeds=2), runner=runner, log=lambda m: None, report=False)
    assert A.read_complete_result(out / "base" / "seed7")["val_bpb"] == pytest.approx(fake_bpb(["d"], 7))

    def broken(recipe, run_dir):
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        return {"val_bpb": float("nan"), "plugins": []}

    with pytest.raises(A.AblationError, match="without a complete result.json"):
        A.run_ablation(_plan(recipe_file, tmp_path / "x", n_seeds=1), runner=broken, log=lambda m: None)


def test_single_seed_gives_no_p_values(plugins_abc, recipe_file, tmp_path):
    out = tmp_path / "one"
    s = A.run_ablation(_plan(recipe_file, out, n_seeds=1), runner=FakeRunner(), log=lambda m: None)
    v = s["variants"][1]
    assert v["n"] == 1 and v["delta_bpb"] == pytest.approx(-0.02)
    data = json.loads((out / "ablation.json").read_text())  # NaN is written as null
    assert data["variants"][1]["std"] is None and data["variants"][1]["p"] is None
    assert data["variants"][1]["passes_bar"] is False
    assert (out / "ablation.png").is_file() and "–" in (out / "ablation.md").read_text()


def test_read_curve_splits_training_and_final_points(tmp_path):
    from golf_core.ablate_report import read_curve

    (tmp_path / "metrics.jsonl").write_text(
        '{"event": "val", "step": 10, "val_bpb": 2.0}\n'
        '{"event": "train", "step": 10, "train_loss": 4.0}\n'
        'not json\n'
        '{"event": "val", "step": 0, "val_bpb": 3.0}\n'
        '{"event": "val", "phase": "pre_quant", "step": 20, "val_bpb": 1.5}\n'
        '{"event": "val", "phase": "final", "step": 20, "val_bpb": 1.6}\n'
        '{"event": "val", "step": 30, "val_bpb')
    assert read_curve(tmp_path) == [(0.0, 3.0), (10.0, 2.0), (20.0, 1.5)]
    assert read_curve(tmp_path, final=True) == [(20.0, 1.6)]
    assert read_curve(tmp_path / "missing") == []


def test_cli_ablate_dry_run_and_fake_run(plugins_abc, recipe_file, tmp_path, monkeypatch, capsys):
    from golf_core.cli import main

    out = tmp_path / "cli"
    assert main(["ablate", str(recipe_file), "--toggle", "a,b", "--mode", "grid", "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "4 variants x 1 seed(s) = 4 runs" in text and "+a+b" in text and not out.exists()

    fake = FakeRunner()
    monkeypatch.setattr(A, "default_runner", lambda recipe, run_dir, echo=False: fake(recipe, run_dir))
    assert main(["ablate", str(recipe_file), "--toggle", "b", "--seeds", "2", "--out", str(out)]) == 0
    assert fake.calls == [(["d", "a"], 7), (["d", "a"], 8), (["d", "a", "b"], 7), (["d", "a", "b"], 8)]
    assert (out / "curves.png").is_file()
    # bad input: one line, exit 2
    assert main(["ablate", str(recipe_file), "--toggle", "a,a", "--out", str(out)]) == 2
    assert "named twice" in capsys.readouterr().err
