"""The LoRA-TTT record recipes pr1530, pr1610, pr1626, pr1667: their TTT settings as the records
ran them, and `golf check --tiny` end to end.

The check is slow (train, quantize and seven scored runs per recipe), so it runs on the two
recipes that between them exercise every distinct piece of the adapter, on a stream of three
demo documents: pr1626 (three phases of global SGD, one document per batch, so phases 1 and 2
change the model before later documents are scored; pr1610's single phase is the same code with
N = 1) and pr1667 (two documents per batch, a per-batch reset and a smaller last bank, with the
SmearGate and the attention output gate inside the TTT forward, and its declared
document-independent eval audited; pr1530 is the same adapter without the gates). Measured on one core: pr1626 ~47 s, pr1667 ~31 s of CPU (pr1530 and
pr1610 would add ~22 s each).
"""
from __future__ import annotations

import json

import pytest

from golf_core.check import PASS, CheckOptions, check_recipe
from golf_core.recipe import load_recipe

NAMES = ["pr1530", "pr1610", "pr1626", "pr1667"]
SHORT = ["model.num_layers=6", "model.mlp_mult=2.0", "train.iterations=2", "train.warmup_steps=0",
         "train.train_batch_tokens=1024", "eval.max_tokens=1600", "options.gptq.calibration_batches=1",
         "options.gptq.calibration_seqs=2", "options.gptq.report=false"]


def test_ttt_settings_as_the_records_ran_them():
    t = {n: load_recipe(n).options["lora-ttt"] for n in NAMES}
    for n in NAMES:   # #1530's document LoRA: rank 96, AdamW lr 1e-4, betas (0, 0.999), wd 0.5, 64 documents
        assert (t[n]["rank"], t[n]["optimizer"], t[n]["lr"], t[n]["beta1"], t[n]["beta2"], t[n]["weight_decay"],
                t[n]["batch_docs"], t[n]["seq_len"]) == (96, "adamw", 1e-4, 0.0, 0.999, 0.5, 64, 2048), n
    assert [t[n]["chunk_size"] for n in NAMES] == [32, 32, 48, 48]
    assert [t[n].get("prefix_docs", 0) for n in NAMES] == [0, 2000, 2000, 0]
    assert (t["pr1610"]["num_phases"], t["pr1610"]["global_lr"], t["pr1610"]["global_epochs"]) == (1, 0.005, 3)
    assert (t["pr1626"]["num_phases"], t["pr1626"]["global_lr"], t["pr1626"]["global_epochs"]) == (3, 0.001, 1)
    # document-independent eval is declared (and so audited) exactly where there are no phases
    assert [load_recipe(n).check.document_independent for n in NAMES] == [True, False, False, True]


def _check(name, extra, tmp_path):
    recipe = load_recipe(name, overrides=SHORT + extra, tiny=True)
    out = tmp_path / name
    rep = check_recipe(recipe, out, CheckOptions(cuts=3, cuts_b=1, whole_cuts=1, flips=16, seed=9, echo=False))
    assert rep.passed, rep.table()
    v = {r.id: r.verdict for r in rep.rules}
    assert v["causality"] == PASS and v["scored_once"] == PASS and v["score_before_update"] == PASS
    if recipe.check.document_independent:   # pr1667 (from pr1530): no phases, adapters reset per document
        assert v["document_independence"] == PASS
    events = [json.loads(line) for line in (out / "eval_ledger.jsonl").read_text().splitlines()]
    return events


@pytest.mark.slow
def test_pr1626_tiny_passes_golf_check_with_its_three_phases(tmp_path, demo_data):
    # one document a batch, three scored-prefix documents: phases after the 1st, 2nd and 3rd batch
    events = _check("pr1626", ["options.lora-ttt.batch_docs=1", "options.lora-ttt.prefix_docs=3",
                               "options.lora-ttt.seq_len=32", "options.lora-ttt.global_chunk_tokens=64"], tmp_path)
    groups = next(e for e in events if e["event"] == "order")["groups"]
    docs = [tuple(g[0]) for g in groups]
    assert len(docs) == 3 and all(len(g) == 1 for g in groups)
    # a phase shows as updates over whole documents, each already scored; phase k trains on k documents
    whole = [i for i, e in enumerate(events) if e["event"] == "update" and tuple(e["targets"]) in docs]
    runs, cur = [], [whole[0]]
    for i in whole[1:]:
        if i == cur[-1] + 1:
            cur.append(i)
        else:
            runs.append(cur)
            cur = [i]
    runs.append(cur)
    assert [len(r) for r in runs] == [1, 2, 3]
    later_scores = [e for e in events[runs[0][-1]:] if e["event"] == "score"]
    assert later_scores, "phase 1 must come before later documents are scored"


@pytest.mark.slow
def test_pr1667_tiny_passes_golf_check(tmp_path, demo_data):
    events = _check("pr1667", ["options.lora-ttt.batch_docs=2", "options.lora-ttt.seq_len=64"], tmp_path)
    groups = next(e for e in events if e["event"] == "order")["groups"]
    assert [len(g) for g in groups] == [1, 2]      # the longest document alone (a smaller bank), then two
