"""golf check's parts against independent references: the ledger certificate on hand-written
ledgers, the per-target tolerance and its cap, the cut comparison (brute-force loops), cut
placement, data folders on disk, the audit hook on file opens, document overlap, the recorded
validation stream, and the rules' verdicts (a rule not checked fails unless declared)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from golf_core.check import (FAIL, NOT_CHECKED, NOT_JUDGED, PASS, CheckReport, Cut, Facts, NormStats, Outcome,
                             audit_ledger, boundaries, compare, decide, document_overlap, per_target_tolerance,
                             plan_cuts)
from golf_core.check.audit import judged_hardware, rule_artifact_cap, rule_no_validation
from golf_core.check.opens import Recorder
from golf_core.check.session import Violation


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


# ---------------------------------------------------------------------------------------------
# tolerance and the cut comparison
# ---------------------------------------------------------------------------------------------


def test_tolerance_is_per_target_and_capped():
    a = np.array([1.0, 1.0, 1.0, 1.0, np.nan])
    b = np.array([1.0, 1.0 + 1e-8, 1.0 + 1e-3, 1.0 + 1.0, 1.0])
    tol = per_target_tolerance(a, b, safety=10, floor=1e-6, cap=1e-4)
    assert tol.tolist() == [1e-6, 1e-6, 1e-4, 1e-4, 1e-4]
    # noise of its own cannot buy a tolerance above the cap
    assert per_target_tolerance(np.zeros(3), np.full(3, 5.0)).max() == 1e-4


def _outcome(nll, rows=None):
    nll = np.asarray(nll, dtype=np.float64)
    return Outcome(nll=nll, coverage=np.ones(nll.size, dtype=np.int64), rows=rows or {})


def test_compare_checks_every_earlier_target_and_the_row_at_the_cut():
    rng = np.random.default_rng(0)
    base = rng.random(20)
    row = np.log(np.full(5, 0.2))
    cut = Cut(8, "window", "A", (8, 12))
    var = base.copy()
    var[7:] += 1.0                       # targets at t >= 8 may move
    tol = np.full(20, 1e-6)
    r = compare(_outcome(base, {7: row}), _outcome(var, {7: row.copy()}), cut, tol)
    assert (r.checked, r.moved, r.row_checked) == (8, 0, True)
    var2 = var.copy()
    var2[[2, 5]] += 1e-3                 # two earlier targets moved
    bad_row = row.copy()
    bad_row[3] += 0.5
    r = compare(_outcome(base, {7: row}), _outcome(var2, {7: bad_row}), cut, tol)
    ref = sum(abs(base[k] - var2[k]) > 1e-6 for k in range(7)) + 1
    assert r.moved == ref == 3 and r.row_delta == 0.5 and r.worst_t == 8


def test_document_independence_counts_only_untouched_documents():
    # documents: tokens 0-4 doc 1, 5-9 doc 2, 10-14 doc 3 (BOS at 0, 5, 10)
    toks = np.array([1, 4, 4, 4, 4, 1, 4, 4, 4, 4, 1, 4, 4, 4, 4, 4])
    from golf_core.check.overlap import doc_of_target

    docs = doc_of_target(toks, 1)
    base = np.zeros(15)
    var = base.copy()
    var[3:5] += 1.0                      # doc 1 after the flip at 4: allowed
    cut = Cut(4, "document", "A", (4,))
    assert compare(_outcome(base), _outcome(var), cut, np.full(15, 1e-6), docs).doc_moved == 0
    var[12] += 1.0                       # doc 3 moved when doc 1 changed: the SmearGate BOS leak
    r = compare(_outcome(base), _outcome(var), cut, np.full(15, 1e-6), docs)
    assert r.doc_moved == 1 and r.doc_worst_t == 13 and r.moved == 0


# ---------------------------------------------------------------------------------------------
# cuts, data folders, file opens, overlap
# ---------------------------------------------------------------------------------------------


def test_cuts_cover_the_boundaries_and_the_whole_stream():
    from golf_core.eval import WindowSchedule

    n = 4096
    s = WindowSchedule(n, 128, 32)
    b = boundaries(n, s.score_lo(), s.score_hi(), [8, 3], [[0, 512], [512, 1024]], [300, 2000, 3900])
    assert b["document"] == [300, 2000, 3900] and 513 in b["chunk"] and 3700 in b["late"]
    assert b["rank"][0] == int(s.score_lo()[-(-len(s) // 8)]) + 1
    cuts = plan_cuts(n, b, ["A", "B"], [12, 3], 40, seed=1)
    assert len(cuts) == 15 and {c.geometry for c in cuts} == {"A", "B"}
    assert {"document", "chunk", "batch", "window", "late", "rank", "random"} <= {c.kind for c in cuts}
    docs = [c.j for c in cuts if c.kind == "document"]
    assert docs[0] - 1 in (300, 2000, 3900) and docs[1] in (300, 2000, 3900)   # after BOS, then the BOS
    for c in cuts:
        assert c.flips[0] == c.j and all(p > c.j for p in c.flips[1:]) and len(c.flips) == len(set(c.flips))
        assert len(c.flips) == min(40, n - c.j + 1)
    assert plan_cuts(n, b, ["A"], [5], 40, seed=2) != plan_cuts(n, b, ["A"], [5], 40, seed=3)


def test_data_folder_holds_the_flipped_stream_on_disk(tmp_path):
    from golf_core.check.disk import write_data_dir
    from golf_core.data.paths import DataPaths
    from golf_core.data.shards import read_shard, write_shard

    src = tmp_path / "src" / "datasets" / "x_sp64"
    v0 = write_shard(src / "fineweb_val_000000.bin", np.arange(10) % 64)
    v1 = write_shard(src / "fineweb_val_000001.bin", np.arange(10, 20) % 64)
    t0 = write_shard(src / "fineweb_train_000000.bin", np.arange(30) % 64)
    data = DataPaths(src, tmp_path / "tok.model", [t0], [v0, v1], "x", 64)
    ds = write_data_dir(tmp_path / "d", data, {3: 50, 12: 60})
    assert ds.name == "x_sp64" and (ds / "fineweb_train_000000.bin").is_symlink()
    got = np.concatenate([np.asarray(read_shard(ds / f"fineweb_val_00000{i}.bin")) for i in (0, 1)])
    ref = np.arange(20) % 64
    ref[3], ref[12] = 50, 60
    assert got.tolist() == ref.tolist()
    assert np.asarray(read_shard(v0)).tolist() == list(range(10))     # the source is untouched


def test_audit_hook_records_unsanctioned_opens_of_shards(tmp_path):
    p = tmp_path / "fineweb_val_000000.bin"
    p.write_bytes(b"0" * 8)
    q = tmp_path / "fineweb_train_000000.bin"
    q.write_bytes(b"0" * 8)
    state = {"phase": "pre_quant"}
    rec = Recorder(frozenset([p.name]), frozenset([q.name]), lambda: (state["phase"], "sneaky")).start()
    try:
        np.fromfile(p, dtype=np.uint8)
        with rec.sanctioned():
            open(p, "rb").close()
        state["phase"] = "eval"
        np.memmap(q, dtype=np.uint8, mode="r")
    finally:
        rec.stop()
    open(p, "rb").close()                # after stop: not recorded
    assert [(e["kind"], e["phase"], e["sanctioned"]) for e in rec.events] == [
        ("val", "pre_quant", False), ("val", "pre_quant", True), ("train", "eval", False)]
    assert len(rec.unsanctioned_val()) == 1 and rec.train_opens(("eval",))[0]["plugin"] == "sneaky"


def test_document_overlap_counts_shared_documents(tmp_path):
    from golf_core.data.shards import write_shard

    a, b, c = [1, 5, 6, 7], [1, 8, 9], [1, 10, 11, 12, 13]
    val = np.array(a + b + c)
    t = write_shard(tmp_path / "fineweb_train_000000.bin", np.array([3, 4] + b + [1, 2] + a))
    o = document_overlap(val, [t], bos=1)
    assert (o.val_docs, o.train_docs, o.shared, o.shared_tokens, o.val_tokens) == (3, 3, 2, 7, 12)
    assert o.examples == [0, 1]


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


def test_training_data_at_eval_fails_and_after_the_loop_counts_on_the_clock():
    from golf_core.check.audit import rule_train_data_after_clock

    ev = {"kind": "train", "phase": "eval", "plugin": "cache", "file": "fineweb_train_000000.bin", "run": "report"}
    assert rule_train_data_after_clock(Facts(opens=[ev])).verdict == FAIL
    gptq = {**ev, "phase": "quantize", "plugin": "gptq"}
    h100 = dict(device="NVIDIA H100 80GB HBM3", world_size=8)
    assert rule_train_data_after_clock(Facts(opens=[gptq], train_seconds=599.5, post_train_seconds=4.0,
                                             **h100)).verdict == FAIL
    assert rule_train_data_after_clock(Facts(opens=[gptq], train_seconds=592.0, post_train_seconds=4.0,
                                             **h100)).verdict == PASS
    assert rule_train_data_after_clock(Facts()).verdict == PASS


def test_artifact_cap_is_decimal_16e6():
    assert rule_artifact_cap(Facts(code_bytes=16_000, model_bytes=15_984_000)).verdict == PASS
    r = rule_artifact_cap(Facts(code_bytes=16_001, model_bytes=15_984_000))
    assert r.verdict == FAIL and "16,000,001 bytes" in r.evidence


def test_validation_reads_and_opens_are_named_by_phase_and_plugin():
    reads = [{"phase": "pre_quant", "reason": "x", "tokens": 5, "plugin": "prequant-ttt"}] * 2
    r = rule_no_validation(Facts(reads=reads, tracks={"prequant-ttt": "trains-on-val", "ema": "fixed-predictor"}))
    assert r.verdict == FAIL
    assert "2 reads of validation data in phase pre_quant: prequant-ttt" in r.evidence
    assert "declared trains-on-val: prequant-ttt" in r.evidence
    opens = [{"kind": "val", "phase": "pre_quant", "plugin": "x", "sanctioned": False},
             {"kind": "val", "phase": "eval", "plugin": None, "sanctioned": True}]
    r = rule_no_validation(Facts(opens=opens))
    assert r.verdict == FAIL and "1 open of a validation shard file outside the eval session in phase pre_quant: x" \
        in r.evidence
    assert rule_no_validation(Facts(opens=opens[1:])).verdict == PASS


def test_not_checked_fails_unless_declared(tmp_path):
    f = Facts(violations=[Violation("scored_twice", "target 7 (validation token 8) scored twice")],
              coverage=np.ones(10), norm=NormStats(rows_checked=10, min_cols=23, vocab_size=23))
    rules = {r.id: r for r in decide(f)}
    assert rules["scored_once"].verdict == FAIL and "target 7" in rules["scored_once"].evidence
    assert rules["causality"].verdict == FAIL and rules["causality"].evidence.startswith("not checked")
    assert rules["document_independence"].verdict == "n/a"
    f.exempt = {"causality": "no eval stream of our own", "audit_reproduces": "idem", "document_overlap": "no BOS",
                "targets_after_scoring": "idem", "score_before_update": "idem", "artifact_cap": "x",
                "train_clock": "x", "eval_clock": "x"}
    rules = {r.id: r for r in decide(f)}
    assert rules["causality"].verdict == NOT_CHECKED and "declared: no eval stream" in rules["causality"].evidence
    rep = CheckReport("x.toml", "recipe", list(rules.values()))
    assert rep.failed == ["scored_once"] and not rep.passed
    data = json.loads(rep.write(tmp_path).read_text())
    assert data["passed"] is False and data["failed"] == ["scored_once"] and len(data["rules"]) == 13


def test_session_rows_and_targets_rules():
    f = Facts(violations=[Violation("read_unscored_targets", "batch.y of windows 0..3 read before they were scored"),
                          Violation("short_rows", "scored rows have 9 columns, the vocabulary 10")])
    rules = {r.id: r for r in decide(f)}
    assert rules["targets_after_scoring"].verdict == FAIL and rules["normalization"].verdict == FAIL
