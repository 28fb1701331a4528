"""golf check on adapters written here. A tiny recipe with the core scorer is checked once
(training, the run, the flip test: every rule passes); its run directory is then re-checked with
each adapter swapped into resolved.toml (RUN_DIR mode: decode artifact.bin, score, flip test at
eval time): an adapter that reads one token ahead fails causality; one that scores a target twice
fails C4; one that adapts before scoring, or scores an earlier chunk after adapting on a later
one, fails C3."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
import torch.nn.functional as F

from golf_core import NoOptions, TechniqueInfo, hookimpl
from golf_core.check import FAIL, PASS, CheckOptions, check_recipe, check_run_dir
from golf_core.eval import score_fixed, window_nll
from golf_core.recipe import apply_override, load_recipe_text, validate_recipe_data
from golf_core.tiny import apply_tiny

SHORT = ["model.num_layers=2", "train.iterations=1", "train.warmup_steps=0", "eval.max_tokens=1025",
         "eval.stride=64"]


class Peek:
    """Scores target t with a +3 logit bonus on the token right after it (reads one token ahead)."""

    @hookimpl
    def golf_register(self, register):
        register(TechniqueInfo(name="peek", options=NoOptions, summary="test: reads one token ahead",
                               legality="score-first"))

    @hookimpl
    def golf_eval_adapt(self, model, session):
        with torch.inference_mode():
            for b in session.windows():
                z = model.forward_logits(b.x).float()
                nxt = torch.roll(b.y, -1, dims=1)
                bonus = torch.zeros_like(z).scatter_(2, nxt.unsqueeze(-1), 3.0)
                bonus[:, -1] = 0.0
                session.score(b, F.cross_entropy((z + bonus).transpose(1, 2), b.y, reduction="none"))
        return True


class Twice:
    """Scores everything, then the first batch again."""

    @hookimpl
    def golf_register(self, register):
        register(TechniqueInfo(name="twice", options=NoOptions, summary="test: scores a target twice"))

    @hookimpl
    def golf_eval_adapt(self, model, session):
        score_fixed(model, session)
        with torch.inference_mode():
            b = next(iter(session.windows()))
            session.score(b, window_nll(model, b))
        return True


class Backwards:
    """Scores the second chunk, adapts on it, then scores the first (all other chunks in order)."""

    @hookimpl
    def golf_register(self, register):
        register(TechniqueInfo(name="backwards", options=NoOptions, summary="test: scores after adapting on later tokens"))

    @hookimpl
    def golf_eval_adapt(self, model, session):
        chunks = session.chunks(256)
        order = [chunks[1], chunks[0]] + chunks[2:]
        with torch.inference_mode():
            for i, c in enumerate(order):
                for b in c.windows():
                    session.score(b, window_nll(model, b))
                if i == 0:
                    session.update_tokens(c)
        return True


class Eager:
    """Asks for a chunk's tokens before scoring it."""

    @hookimpl
    def golf_register(self, register):
        register(TechniqueInfo(name="eager", options=NoOptions, summary="test: adapts before scoring"))

    @hookimpl
    def golf_eval_adapt(self, model, session):
        session.update_tokens(session.chunks(256)[0])
        return score_fixed(model, session)


@pytest.fixture(scope="module")
def registry_with_adapters():
    """The process-wide registry, replaced by one holding the test adapters (module scope)."""
    from golf_core import plugins as P

    old = P._REGISTRY
    reg = P.PluginRegistry()
    for name, plugin in (("peek", Peek()), ("twice", Twice()), ("backwards", Backwards()), ("eager", Eager())):
        reg.add(name, plugin)
    P.set_registry(reg)
    try:
        yield reg
    finally:
        P.set_registry(old)


@pytest.fixture(scope="module")
def core_run(tmp_path_factory, registry_with_adapters, demo_data):
    """One check of a tiny 2-layer baseline recipe: trains once; its run directory is then
    re-checked with each test adapter swapped in (no retraining)."""
    data = apply_tiny(load_recipe_text("plugins = []\n", "core.toml").to_dict())
    for o in SHORT:
        apply_override(data, o)
    recipe = validate_recipe_data(data, "core.toml")
    recipe.tiny = True
    out = tmp_path_factory.mktemp("check") / "core"
    return out, check_recipe(recipe, out, CheckOptions(probes=3, sweep="off", echo=False))


def _with_adapter(core_run, tmp_path, name):
    """A copy of the core run directory whose recipe uses adapter ``name``; its check."""
    from golf_core import tomlio

    src, _ = core_run
    dst = tmp_path / name
    dst.mkdir()
    for f in ("artifact.bin", "result.json", "manifest.json", "eval_ledger.jsonl"):
        shutil.copy(src / f, dst / f)
    data = tomlio.load_file(src / "resolved.toml")
    data["plugins"] = [name]
    (dst / "resolved.toml").write_text(tomlio.dumps(data))
    return check_run_dir(dst, None, CheckOptions(probes=3, sweep="off", echo=False))


@pytest.mark.slow
def test_core_scorer_passes_every_rule(core_run):
    out, rep = core_run
    v = {r.id: r.verdict for r in rep.rules}
    assert rep.passed, rep.table()
    assert v["causality"] == PASS and v["normalization"] == PASS and v["scored_once"] == PASS
    assert v["train_clock"] == "not judged"
    data = json.loads((out / "compliance.json").read_text())
    assert data["passed"] and data["flip"]["noise"] == 0.0
    assert (out / "artifact.bin").is_file() and (out / "result.json").is_file()


@pytest.mark.slow
def test_run_dir_check_of_the_core_run(core_run, tmp_path):
    out, _ = core_run
    rep = check_run_dir(out, tmp_path, CheckOptions(probes=2, sweep="off", echo=False))
    assert rep.passed, rep.table()
    assert "eval-time adaptation" in rep.rule("causality").evidence
    assert (tmp_path / "compliance.json").is_file()


@pytest.mark.slow
def test_one_token_lookahead_is_caught(core_run, tmp_path):
    rep = _with_adapter(core_run, tmp_path, "peek")
    r = rep.rule("causality")
    assert r.verdict == FAIL, rep.table()
    # a probe inside a window moves exactly the score at t = j - 1 (the target whose next token was
    # flipped); a target at a window's last position has no next token in its window, so no peek
    inner = next(p for p in r.details["probes"] if p["kind"] == "batch-inner")
    assert inner["violated"] and inner["moved"] == 1 and inner["worst_t"] == inner["j"] - 1
    for p in r.details["probes"]:
        assert not p["violated"] or p["worst_t"] == p["j"] - 1
    assert "moved by" in r.evidence and "nats at j=" in r.evidence
    assert rep.rule("scored_once").verdict == PASS


@pytest.mark.slow
def test_double_scoring_is_caught(core_run, tmp_path):
    rep = _with_adapter(core_run, tmp_path, "twice")
    r = rep.rule("scored_once")
    assert r.verdict == FAIL and "scored twice" in r.evidence, rep.table()
    assert not rep.passed


@pytest.mark.slow
def test_scoring_after_adapting_on_later_tokens_is_caught(core_run, tmp_path):
    rep = _with_adapter(core_run, tmp_path, "backwards")
    r = rep.rule("score_before_update")
    assert r.verdict == FAIL and "scored after an update that read targets [256, 512)" in r.evidence, rep.table()


@pytest.mark.slow
def test_adapting_before_scoring_is_caught(core_run, tmp_path):
    rep = _with_adapter(core_run, tmp_path, "eager")
    r = rep.rule("score_before_update")
    assert r.verdict == FAIL and "has not been scored yet" in r.evidence, rep.table()


@pytest.mark.slow
def test_cli_prints_the_table_and_exits_non_zero_on_a_failed_rule(core_run, tmp_path, capsys):
    from golf_core.cli import main

    src, _ = core_run
    ok = tmp_path / "ok"
    shutil.copytree(src, ok, ignore=shutil.ignore_patterns("compliance.json", "checkpoints"))
    assert main(["check", str(ok), "--probes", "1", "--sweep", "off", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "causality" in out and "artifact_cap" in out and "passed: no rule failed" in out
    # an artifact over the cap fails one rule: exit 1, the row says by how much
    big = tmp_path / "big"
    shutil.copytree(ok, big)
    res = json.loads((big / "result.json").read_text())
    res["model_bytes"] = 16_000_000
    (big / "result.json").write_text(json.dumps(res))
    assert main(["check", str(big), "--probes", "1", "--sweep", "off", "--quiet", "--out", str(tmp_path / "o")]) == 1
    out = capsys.readouterr().out
    assert "FAILED: artifact_cap" in out and "> 16,000,000" in out
    assert json.loads((tmp_path / "o" / "compliance.json").read_text())["failed"] == ["artifact_cap"]
    # bad input: one line naming the culprit, exit 2
    assert main(["check", str(tmp_path / "o")]) == 2
    assert "no resolved.toml" in capsys.readouterr().err
