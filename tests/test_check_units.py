"""golf check's parts against independent references: the ledger certificate on hand-written
ledgers, probe placement, the flip comparison and the whole flip test on toy black boxes
(brute-force float64 loops), the logit tap on toy adapters, the vocabulary sweep, the
substituted validation stream, and the rules' verdicts."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from golf_core.check import (FAIL, NOT_CHECKED, NOT_JUDGED, PASS, AuditSession, CheckReport, Facts, LogitTap, NormStats,
                             Outcome, Probe, audit_ledger, choose_probes, decide, run_flip, vocab_sweep)
from golf_core.check.audit import judged_hardware, rule_artifact_cap, rule_no_validation
from golf_core.check.flip import compare, noise_floor, tolerance
from golf_core.check.session import Violation
from golf_core.data.tokenizer import ByteLuts
from golf_core.errors import LegalityError
from golf_core.eval import WindowSchedule, score_fixed, window_nll

V = 23


# ---------------------------------------------------------------------------------------------
# ledger
# ---------------------------------------------------------------------------------------------


def S(lo, hi, v):
    return {"event": "score", "state_version": v, "targets": [lo, hi]}


def U(lo, hi, v):
    return {"event": "update", "state_version": v, "targets": [lo, hi]}


def test_ledger_score_first_chunks_pass():
    a = audit_ledger([S(0, 10, 0), S(10, 20, 0), U(0, 20, 0), S(20, 30, 1), U(20, 30, 1), S(30, 40, 2)])
    assert a.ok and (a.scores, a.updates) == (4, 2)


def test_ledger_earlier_target_scored_after_update_fails():
    a = audit_ledger([S(10, 20, 0), U(10, 20, 0), S(0, 10, 1)])
    assert not a.ok and "target 0 scored after an update that read targets [10, 20)" in a.problems[0]


def test_ledger_update_of_unscored_targets_fails():
    a = audit_ledger([S(0, 10, 0), U(0, 20, 0), S(20, 30, 1)])
    assert not a.ok and "not all scored" in a.problems[0]


def test_ledger_versions_must_count_updates():
    a = audit_ledger([S(0, 10, 0), U(0, 10, 0), S(10, 20, 0)])
    assert not a.ok and "versions do not count" in a.problems[0]


def test_ledger_of_several_ranks_counts_every_ranks_scores_before_an_update():
    from golf_core.check import audit_ledgers

    r0 = [S(0, 128, 0), U(0, 256, 0), S(256, 384, 1)]
    r1 = [S(128, 256, 0), U(0, 256, 0), S(384, 512, 1)]
    assert audit_ledgers({0: r0, 1: r1}).ok
    # rank 1 never scored its half before the update: the union does not cover [0, 256)
    bad = audit_ledgers({0: r0, 1: [U(0, 256, 0), S(128, 256, 1), S(384, 512, 1)]})
    assert not bad.ok and any("not all scored" in p for p in bad.problems)


# ---------------------------------------------------------------------------------------------
# probes
# ---------------------------------------------------------------------------------------------


def test_probes_sit_at_the_documented_positions():
    scores = [{"targets": [0, 128]}, {"targets": [128, 256]}, {"targets": [256, 384]}, {"targets": [384, 400]}]
    updates = [{"targets": [0, 256]}]
    windows = [(0, 128)] + [(lo, lo + 32) for lo in range(128, 400, 32)]
    got = choose_probes(400, scores, updates, rank_first_targets=[200], stride=32, max_probes=50, seed=3,
                        windows=windows)
    by_kind = {}
    for p in got:
        by_kind.setdefault(p.kind, []).append(p.j)
    # the batch a third of the way in is [128, 256), windows [128,160) ... [224,256): the inner probe
    # is mid-block of the middle window that is not the batch's last ([160,192): target 176);
    # last target 255, first 128
    assert by_kind["batch-inner"] == [176 + 1]
    assert by_kind["batch-last"] == [256]
    assert by_kind["batch-first"] == [129]
    assert by_kind["chunk-next"] == [257] and 256 not in by_kind.get("chunk-last", [])  # 256 already taken
    assert by_kind["rank"] == [201, 200]
    js = [p.j for p in got]
    assert len(js) == len(set(js)) and all(2 <= j <= 400 for j in js)


def test_probe_budget_covers_kinds_first():
    scores = [{"targets": [i, i + 64]} for i in range(0, 640, 64)]
    got = choose_probes(640, scores, [{"targets": [0, 320]}], stride=16, max_probes=3, seed=0)
    assert [p.kind for p in got] == ["batch-inner", "chunk-next", "batch-last"]
    # one batch holding the whole stream: the inner probe avoids window 0 and the batch's last
    windows = [(0, 64)] + [(lo, lo + 16) for lo in range(64, 640, 16)]
    got = choose_probes(640, [{"targets": [0, 640]}], stride=16, max_probes=1, windows=windows)
    inner = [w for w in windows[1:-1]][len(windows[1:-1]) // 2]
    assert got == [Probe(inner[0] + 8 + 1, "batch-inner")]


# ---------------------------------------------------------------------------------------------
# the flip comparison and the flip test on toy black boxes
# ---------------------------------------------------------------------------------------------


def test_compare_counts_exactly_the_earlier_moves():
    rng = np.random.default_rng(0)
    a = rng.random(50)
    b = a.copy()
    b[10] += 0.5    # position t = 11
    b[30] += 1e-9   # below tolerance
    b[45] += 2.0    # position t = 46 >= j: allowed
    r = compare(Outcome(a, np.ones(50)), Outcome(b, np.ones(50)), Probe(40, "random"), 3, 4, tol=1e-6)
    assert r.checked == 39 and r.moved == 1 and r.worst_t == 11 and math.isclose(r.max_delta, 0.5)


def test_compare_uses_the_original_token_row_at_t_equals_j():
    a, b = np.zeros(10), np.zeros(10)
    row_a, row_b = np.log(np.full(V, 1 / V)), np.log(np.full(V, 1 / V))
    row_b = row_b.copy()
    row_b[5] += 0.3   # the original token's log p at target j-1 moved
    r = compare(Outcome(a, np.ones(10), {6: row_a}), Outcome(b, np.ones(10), {6: row_b}), Probe(7, "x"), 5, 9, 1e-6)
    assert r.row_checked and r.moved == 1 and r.worst_t == 7


def test_noise_and_tolerance():
    a = np.array([1.0, 2.0, np.nan])
    assert noise_floor(a, a + np.array([1e-7, -3e-7, 0])) == pytest.approx(3e-7)
    assert noise_floor(a, np.array([1.0, np.nan, 2.0])) == math.inf
    assert tolerance(0.0) == 1e-6 and tolerance(3e-7) == pytest.approx(3e-6)


def toy_nll(tokens: np.ndarray, lookahead: int = 0) -> np.ndarray:
    """A float64 'model': target i (token i+1) has p = softmax(W[token i] + b * mean(prefix))[token i+1];
    with ``lookahead`` k it also adds a bonus for the token k positions after the target (a leak)."""
    g = np.random.default_rng(5)
    W = g.normal(size=(V, V))
    n = len(tokens) - 1
    out = np.empty(n)
    for i in range(n):
        z = W[tokens[i]] + 0.1 * np.mean(tokens[: i + 1])
        if lookahead and i + 1 + lookahead < len(tokens):
            z = z.copy()
            z[tokens[i + 1 + lookahead] % V] += 3.0
        out[i] = np.log(np.exp(z - z.max()).sum()) + z.max() - z[tokens[i + 1]]
    return out


def toy_box(lookahead=0):
    def run(stream, watch=()):
        t = stream.numpy()
        nll = toy_nll(t, lookahead)
        return Outcome(nll, np.ones(len(nll), dtype=np.int64))
    return run


def test_flip_test_passes_a_causal_box_and_catches_one_token_lookahead():
    stream = torch.from_numpy(np.random.default_rng(1).integers(0, V, 80))
    probes = [Probe(j, "random") for j in (5, 40, 79)]
    box = toy_box()
    rep = run_flip(box, stream, probes, V, base=box(stream), base2=box(stream))
    assert rep.ok and rep.noise == 0 and rep.tolerance == 1e-6
    assert sum(p.checked for p in rep.probes) == (5 - 1) + (40 - 1) + (79 - 1)
    leak = toy_box(lookahead=1)
    rep = run_flip(leak, stream, probes, V, base=leak(stream), base2=leak(stream))
    assert not rep.ok
    # brute force: flipping token j changes the score of the target at t = j - 1 (it peeks at j)
    for p in rep.probes:
        assert p.moved >= 1
        x = stream.numpy().copy()
        x[p.probe.j] = p.new_token
        d = np.abs(toy_nll(x, 1)[: p.probe.j - 1] - toy_nll(stream.numpy(), 1)[: p.probe.j - 1])
        assert p.moved == int((d > 1e-6).sum()) and p.max_delta == pytest.approx(d.max())


# ---------------------------------------------------------------------------------------------
# the logit tap on toy adapters
# ---------------------------------------------------------------------------------------------


class ToyLM(nn.Module):
    def __init__(self, vocab=V, dim=8, cols=None):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.emb = nn.Parameter(torch.randn(vocab, dim, generator=g))
        self.head = nn.Parameter(torch.randn(cols or vocab, dim, generator=g))

    def forward_hidden(self, x):
        e = self.emb[x]
        return e.cumsum(1) / torch.arange(1, x.shape[1] + 1).view(1, -1, 1)

    def compute_logits(self, h):
        return h @ self.head.T

    def forward_logits(self, x):
        return self.compute_logits(self.forward_hidden(x))


def luts(vocab=V):
    return ByteLuts(np.ones(vocab, np.int16), np.zeros(vocab, bool), np.zeros(vocab, bool))


def session_for(tokens, model, watch=(), seq_len=16, stride=8):
    tap = LogitTap(model)
    return AuditSession(tokens, luts(), WindowSchedule(tokens.numel() - 1, seq_len, stride), batch_seqs=3, tap=tap,
                        watch=watch)


def test_tap_verifies_the_core_scorer_and_keeps_rows():
    tokens = torch.from_numpy(np.random.default_rng(2).integers(0, V, 60))
    model = ToyLM()
    s = session_for(tokens, model, watch=[30])
    with torch.inference_mode():
        score_fixed(model, s)
    assert s.norm.rows_ok == 59 and s.norm.rows_bad == 0 and s.norm.min_cols == V
    # the kept row is log softmax of the logits at target 30, from the window that scores it
    ref = None
    sched = s.schedule
    for w in range(len(sched)):
        lo, hi = sched.window(w).targets
        if lo <= 30 < hi:
            ws = int(sched.starts[w])
            x = tokens[ws: ws + int(sched.lengths[w])].view(1, -1)
            ref = torch.log_softmax(model.forward_logits(x)[0, 30 - ws].double(), -1).detach().numpy()
    assert np.allclose(s.watch_rows[30], ref, atol=1e-6)


def test_tap_flags_an_unnormalized_adapter():
    tokens = torch.from_numpy(np.random.default_rng(3).integers(0, V, 40))
    model = ToyLM()
    s = session_for(tokens, model)
    for b in s.windows():
        z = model.compute_logits(model.forward_hidden(b.x))
        s.score(b, -z.gather(2, b.y.unsqueeze(-1)).squeeze(-1).detach())   # -z[y]: no log-partition
    assert s.norm.rows_ok == 0 and s.norm.rows_bad == 39
    assert s.norm.max_err > 0.1


def test_tap_sees_a_partial_vocabulary():
    tokens = torch.from_numpy(np.random.default_rng(4).integers(0, V // 2, 40))
    model = ToyLM(cols=V // 2)
    s = session_for(tokens, model)
    with torch.inference_mode():
        score_fixed(model, s)
    assert s.norm.rows_ok == 39 and s.norm.min_cols == V // 2
    rule = decide(Facts(norm=s.norm, vocab_size=V))[1]
    assert rule.verdict == FAIL and f"cover {V // 2} of {V}" in rule.evidence


def test_audit_session_records_double_scoring_and_early_updates():
    tokens = torch.from_numpy(np.random.default_rng(5).integers(0, V, 40))
    model = ToyLM()
    s = session_for(tokens, model)
    with pytest.raises(LegalityError):
        s.update_tokens((0, 10))
    b = next(iter(s.windows()))
    with torch.inference_mode():
        s.score(b, window_nll(model, b))
        with pytest.raises(LegalityError):
            s.score(b, window_nll(model, b))
    assert [v.kind for v in s.violations] == ["update_before_score", "scored_twice"]


# ---------------------------------------------------------------------------------------------
# the vocabulary sweep
# ---------------------------------------------------------------------------------------------


def test_sweep_sums_to_one_for_a_causal_box_and_not_for_self_prediction():
    stream = torch.from_numpy(np.random.default_rng(6).integers(0, V, 30))
    res = vocab_sweep(toy_box(), stream, 12, V)
    assert res.ok and res.total == pytest.approx(1.0, abs=1e-9)

    def self_predicting(s, watch=()):
        nll = toy_nll(s.numpy())
        nll = nll - 0.5 * (s.numpy()[1:] % 2 == 0)    # +0.5 nats whenever the target is even
        return Outcome(nll, np.ones(len(nll)))

    res = vocab_sweep(self_predicting, stream, 12, V)
    # reference: sum over w of p(w) * e^{0.5 [w even]}
    base = toy_nll(np.concatenate([stream.numpy()[:13], [0]]))
    z = np.array([toy_nll(np.concatenate([stream.numpy()[:13], [w]]))[12] for w in range(V)])
    ref = float(np.sum(np.exp(-z) * np.where(np.arange(V) % 2 == 0, math.exp(0.5), 1.0)))
    assert not res.ok and res.total == pytest.approx(ref, rel=1e-9) and base.shape == (13,)


# ---------------------------------------------------------------------------------------------
# the substituted stream
# ---------------------------------------------------------------------------------------------


def test_stream_context_feeds_and_records_every_consumer(demo_data):
    from golf_core.check import StreamContext
    from golf_core.context import RunContext
    from golf_core.plugins import ActivePlugins
    from golf_core.recipe import load_recipe_text

    recipe = load_recipe_text("[data]\nsource = 'demo'\nvocab_size = 1024\n[eval]\nseq_len = 32\nmax_tokens = 65\n")
    base = RunContext(recipe=recipe, plugins=ActivePlugins([], {}, {}))
    own = torch.arange(10)
    ctx = StreamContext.derive(base, own)
    with ctx.in_phase("pre_quant"), ctx.in_plugin("ttt"):
        got = ctx.read_validation("ttt: fine-tune")
        raw = ctx._load_validation()
    assert torch.equal(got, own) and torch.equal(raw, own)
    assert ctx.validation_reads == [{"phase": "pre_quant", "reason": "ttt: fine-tune", "tokens": 10, "plugin": "ttt"}]
    assert ctx.unrecorded_loads == [{"phase": "pre_quant", "plugin": "ttt"}]
    assert base.validation_reads == []
    assert StreamContext.derive(base, None).eval_stream().numel() == 65


# ---------------------------------------------------------------------------------------------
# verdicts and the report
# ---------------------------------------------------------------------------------------------


def test_clocks_are_judged_on_8xH100_only():
    assert judged_hardware("NVIDIA H100 80GB HBM3", 8)
    assert not judged_hardware("NVIDIA H100 80GB HBM3", 1) and not judged_hardware("cpu", 8)
    rules = {r.id: r for r in decide(Facts(train_seconds=612.0, eval_seconds=100.0, device="NVIDIA H100 80GB HBM3",
                                           world_size=8))}
    assert rules["train_clock"].verdict == FAIL and rules["eval_clock"].verdict == PASS
    rules = {r.id: r for r in decide(Facts(train_seconds=612.0, eval_seconds=100.0, device="cpu"))}
    assert rules["train_clock"].verdict == NOT_JUDGED and "612.0 s on cpu x1" in rules["train_clock"].evidence


def test_artifact_cap_is_decimal_16e6():
    assert rule_artifact_cap(Facts(code_bytes=16_000, model_bytes=15_984_000)).verdict == PASS
    r = rule_artifact_cap(Facts(code_bytes=16_001, model_bytes=15_984_000))
    assert r.verdict == FAIL and "16,000,001 bytes" in r.evidence


def test_validation_reads_are_named_by_phase_and_plugin():
    reads = [{"phase": "pre_quant", "reason": "x", "tokens": 5, "plugin": "prequant-ttt"}] * 2
    r = rule_no_validation(Facts(reads=reads, tracks={"prequant-ttt": "trains-on-val", "ema": "fixed-predictor"}))
    assert r.verdict == FAIL
    assert "2 reads of validation data in phase pre_quant: prequant-ttt" in r.evidence
    assert "declared trains-on-val: prequant-ttt" in r.evidence
    assert rule_no_validation(Facts()).verdict == PASS


def test_rules_from_violations_and_report(tmp_path):
    f = Facts(violations=[Violation("scored_twice", "target 7 (validation token 8) scored twice")],
              coverage=np.ones(10), norm=NormStats(rows_unmapped=10), adapter="slot", sweep_skipped="sweep off")
    rules = {r.id: r for r in decide(f)}
    assert rules["scored_once"].verdict == FAIL and "target 7" in rules["scored_once"].evidence
    assert rules["causality"].verdict == NOT_CHECKED
    assert rules["normalization"].verdict == NOT_CHECKED and "slot" in rules["normalization"].evidence
    rep = CheckReport("x.toml", "recipe", list(rules.values()))
    assert rep.failed == ["scored_once"] and not rep.passed
    assert "SCORED_ONCE" not in rep.table() and "FAIL" in rep.table()
    data = json.loads(rep.write(tmp_path).read_text())
    assert data["passed"] is False and data["failed"] == ["scored_once"] and len(data["rules"]) == 8
