"""golf check on adapters written here, through the whole check (training, the run, the flip
test): an adapter that reads one token ahead fails causality; one that scores a target twice
fails C4; one that adapts before scoring, or scores an earlier chunk after adapting on a later
one, fails C3; the core scorer passes every rule."""
from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from golf_core import NoOptions, TechniqueInfo, hookimpl
from golf_core.check import FAIL, PASS, CheckOptions, check_recipe
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


def _check(tmp_path, fresh_registry, name, plugin, probes=3):
    if plugin is not None:
        fresh_registry.add(name, plugin)
    data = apply_tiny(load_recipe_text(f"plugins = {[name] if plugin else []!r}\n", f"{name}.toml").to_dict())
    for o in SHORT:
        apply_override(data, o)
    recipe = validate_recipe_data(data, f"{name}.toml")
    recipe.tiny = True
    return check_recipe(recipe, tmp_path / name, CheckOptions(probes=probes, sweep="off", echo=False))


@pytest.mark.slow
def test_core_scorer_passes_every_rule(tmp_path, fresh_registry, demo_data):
    rep = _check(tmp_path, fresh_registry, "core", None)
    v = {r.id: r.verdict for r in rep.rules}
    assert rep.passed, rep.table()
    assert v["causality"] == PASS and v["normalization"] == PASS and v["scored_once"] == PASS
    assert v["train_clock"] == "not judged"
    data = json.loads((tmp_path / "core" / "compliance.json").read_text())
    assert data["passed"] and data["flip"]["noise"] == 0.0
    assert (tmp_path / "core" / "artifact.bin").is_file() and (tmp_path / "core" / "result.json").is_file()


@pytest.mark.slow
def test_one_token_lookahead_is_caught(tmp_path, fresh_registry, demo_data):
    rep = _check(tmp_path, fresh_registry, "peek", Peek())
    r = rep.rule("causality")
    assert r.verdict == FAIL, rep.table()
    # every probe j moves the score at t = j - 1 (the target whose next token was flipped)
    for p in r.details["probes"]:
        assert p["violated"] and p["moved"] >= 1
    assert "moved by" in r.evidence and "nats at j=" in rep.rule("causality").evidence
    assert rep.rule("scored_once").verdict == PASS


@pytest.mark.slow
def test_double_scoring_is_caught(tmp_path, fresh_registry, demo_data):
    rep = _check(tmp_path, fresh_registry, "twice", Twice())
    r = rep.rule("scored_once")
    assert r.verdict == FAIL and "scored twice" in r.evidence, rep.table()
    assert not rep.passed


@pytest.mark.slow
def test_scoring_after_adapting_on_later_tokens_is_caught(tmp_path, fresh_registry, demo_data):
    rep = _check(tmp_path, fresh_registry, "backwards", Backwards(), probes=2)
    r = rep.rule("score_before_update")
    assert r.verdict == FAIL and "scored after an update that read targets [256, 512)" in r.evidence, rep.table()


@pytest.mark.slow
def test_adapting_before_scoring_is_caught(tmp_path, fresh_registry, demo_data):
    rep = _check(tmp_path, fresh_registry, "eager", Eager(), probes=2)
    r = rep.rule("score_before_update")
    assert r.verdict == FAIL and "has not been scored yet" in r.evidence, rep.table()
