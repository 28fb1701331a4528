"""The CaseOps data variant: the reserved-control tokenizer, the byte sidecar against the original
text's UTF-8 bytes, BPB from the sidecar against an independent computation, the split check."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from golf_core.data import caseops, demo_corpus
from golf_core.data.build import build_dataset
from golf_core.data.paths import list_shards
from golf_core.data.shards import read_shard, write_shard
from golf_core.errors import DataError
from golf_core.eval.session import EvalSession


def _val(paths):
    tokens = np.concatenate([np.asarray(read_shard(f), dtype=np.int64) for f in paths.val_files])
    counts = np.concatenate([np.asarray(read_shard(f), dtype=np.int64) for f in paths.val_byte_files])
    return tokens, counts


def _original_val_docs(manifest):
    return demo_corpus.demo_documents()[: manifest["num_val_docs"]]


def test_each_control_is_one_reserved_piece(caseops_demo_data):
    sp = caseops_demo_data.load_tokenizer()
    ids = [sp.piece_to_id(c) for c in caseops.CONTROLS]
    assert ids == [4, 5, 6, 7]  # after pad/bos/eos/unk, in the records' order
    for c, i in zip(caseops.CONTROLS, ids):
        assert sp.encode("x" + c + "y", out_type=int).count(i) == 1


def test_the_sidecar_counts_every_original_byte_of_each_validation_document(caseops_demo_data):
    m = caseops_demo_data.manifest()
    docs = _original_val_docs(m)
    tokens, counts = _val(caseops_demo_data)
    assert [p.name for p in caseops_demo_data.val_byte_files] == ["fineweb_val_bytes_000000.bin"]
    assert tokens.shape == counts.shape
    starts = np.flatnonzero(tokens == 1)
    assert len(starts) == len(docs) and (counts[starts] == 0).all()
    per_doc = np.add.reduceat(counts, starts)
    # independent: the demo documents' own UTF-8 sizes (they carry no leading/trailing whitespace,
    # the only text SentencePiece's normalizer drops)
    assert all(d == d.strip() for d in docs)
    assert per_doc.tolist() == [len(d.encode("utf-8")) for d in docs]
    assert m["stats"]["bytes_val"] == sum(len(d.encode("utf-8")) for d in docs)
    ctrl = np.isin(tokens, [4, 5, 6, 7])
    assert ctrl.any() and (counts[ctrl] == 0).all()


def test_bpb_from_the_sidecar_equals_an_independent_computation_from_the_original_text(caseops_demo_data):
    m = caseops_demo_data.manifest()
    tokens, counts = _val(caseops_demo_data)
    V = caseops_demo_data.vocab_size
    # a fixed predictor: the training shards' unigram distribution (add-one)
    train = np.concatenate([np.asarray(read_shard(f), dtype=np.int64) for f in caseops_demo_data.train_files])
    logp = np.log((np.bincount(train, minlength=V) + 1.0) / (train.size + V))
    session = EvalSession(torch.from_numpy(tokens), caseops_demo_data.byte_luts(), 1024, 1024, batch_seqs=64,
                          token_bytes=counts)
    row = torch.from_numpy(logp)
    for batch in session.windows():
        session.score(batch, row.expand(int(batch.score_mask.sum()), V).clone())
    res = session.result()
    nll = -logp[tokens[1:]].sum()                                 # float64, every target once
    original_bytes = sum(len(d.encode("utf-8")) for d in _original_val_docs(m))
    assert res.bytes == original_bytes and res.tokens == tokens.size - 1
    assert res.val_bpb == pytest.approx(nll / (math.log(2) * original_bytes), rel=1e-9)
    # the byte tables would count each case marker as its 3 UTF-8 bytes: a different denominator
    luts_session = EvalSession(torch.from_numpy(tokens), caseops_demo_data.byte_luts(), 1024, 1024)
    assert int(luts_session.bytes_per_target.sum()) != original_bytes


def test_a_run_context_scores_with_the_sidecar(caseops_demo_data, tmp_path):
    from golf_core.recipe import load_recipe_text
    from golf_core.run import make_context, make_session

    recipe = load_recipe_text('[data]\nsource = "demo"\nvariant = "caseops"\nvocab_size = 1024\n'
                              '[eval]\nseq_len = 256\nmax_tokens = 5000\n')
    ctx = make_context(recipe, None, echo=False)
    session = make_session(ctx, None)
    _, counts = _val(caseops_demo_data)
    n = session.total_targets + 1
    assert session.bytes_per_target.tolist() == counts[1:n].tolist()


def test_a_caseops_tokenizer_without_its_sidecar_is_refused(caseops_demo_data, tmp_path):
    from golf_core.recipe import load_recipe_text
    from golf_core.run import make_context

    ds = tmp_path / "nosidecar"
    ds.mkdir()
    for f in caseops_demo_data.train_files + caseops_demo_data.val_files:
        (ds / f.name).symlink_to(f)
    recipe = load_recipe_text(f'[data]\ndataset_dir = "{ds}"\ntokenizer_path = "{caseops_demo_data.tokenizer_path}"\n'
                              f'vocab_size = 1024\n')
    ctx = make_context(recipe, None, echo=False)
    with pytest.raises(DataError, match="CaseOps tokenizer but no byte sidecars"):
        ctx.validation_bytes(100)


def test_list_shards_keeps_sidecars_apart(caseops_demo_data):
    d = caseops_demo_data.dataset_dir
    assert [p.name for p in list_shards(d, "val")] == ["fineweb_val_000000.bin"]
    assert [p.name for p in list_shards(d, "val_bytes")] == ["fineweb_val_bytes_000000.bin"]


def test_the_caseops_demo_leaves_out_training_repeats_of_validation_documents(caseops_demo_data):
    from golf_core.check.overlap import document_overlap

    sc = caseops_demo_data.manifest()["split_check"]
    assert sc["shared"] == 4 and sc["train_dropped"] == 5 and sc["examples"][0] == 50
    tokens, _ = _val(caseops_demo_data)
    assert document_overlap(tokens, caseops_demo_data.train_files, 1).shared == 0   # token-level, independent


def _write_docs(path, docs):
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs), encoding="utf-8")


def test_a_validation_document_in_training_stops_the_build(tmp_path):
    base = demo_corpus.demo_documents()[300:700]
    docs = base[:20] + base[20:] + base[3:5] + base[12:13]   # validation docs 3, 4 and 12 repeat in training
    src = tmp_path / "docs.jsonl"
    _write_docs(src, docs)
    with pytest.raises(DataError) as e:
        build_dataset(tmp_path / "out", 512, [src], num_val_docs=20, variant="caseops")
    msg = str(e.value)
    assert "\n" not in msg and "3 of 20 validation documents" in msg and "validation document 3" in msg
    assert not (tmp_path / "out" / "datasets" / "custom_caseops_sp512").exists()
    paths = build_dataset(tmp_path / "out", 512, [src], num_val_docs=20, variant="caseops", drop_repeats=True)
    assert paths.manifest()["split_check"]["train_dropped"] == 3
    assert paths.manifest()["stats"]["docs_train"] == len(docs) - 20 - 3


def test_a_sidecar_missing_for_one_validation_shard_is_refused(caseops_demo_data, tmp_path):
    from golf_core.data.paths import with_byte_sidecars

    d = tmp_path / "ds"
    d.mkdir()
    write_shard(d / "fineweb_val_000000.bin", [1, 5, 6])
    write_shard(d / "fineweb_val_000001.bin", [1, 5, 6])
    write_shard(d / "fineweb_val_bytes_000000.bin", [0, 1, 1])
    from golf_core.data.paths import DataPaths

    with pytest.raises(DataError, match="1 byte sidecars .* for 2 validation shards"):
        with_byte_sidecars(DataPaths(d, d / "t.model", [], list_shards(d, "val")))


def test_golf_checks_overlap_rule_reports_the_builds_split_check(caseops_demo_data):
    from golf_core.check.audit import FAIL, PASS, Facts, rule_document_overlap
    from golf_core.check.overlap import document_overlap

    tokens, _ = _val(caseops_demo_data)
    f = Facts(overlap=document_overlap(tokens, caseops_demo_data.train_files, 1),
              build_split=caseops_demo_data.manifest()["split_check"])
    r = rule_document_overlap(f)
    assert r.verdict == PASS and "4 of 300 validation documents repeated in training, 5 training documents left out, 0 kept" in r.evidence
    # a dataset whose build kept its repeats, with no BOS to hash the shards by: the build's record fails it
    f = Facts(overlap=None, overlap_skipped="no BOS", build_split={"val_docs": 10, "shared": 8, "train_dropped": 0})
    assert rule_document_overlap(f).verdict == FAIL


def test_a_fresh_build_carries_its_shard_hashes(caseops_demo_data):
    """A run's manifest then reads no shard again (under golf check, an open of a validation shard
    outside the eval session)."""
    import hashlib

    from golf_core.data.preflight import HASH_CACHE

    cache = json.loads((caseops_demo_data.dataset_dir / HASH_CACHE).read_text())
    for p in caseops_demo_data.train_files + caseops_demo_data.val_files + caseops_demo_data.val_byte_files:
        st = p.stat()
        assert cache[f"{p.name}:{st.st_size}:{st.st_mtime_ns}"] == hashlib.sha256(p.read_bytes()).hexdigest()


def test_inspect_counts_the_sidecar_and_shows_the_original_casing(caseops_demo_data):
    import unicodedata

    from golf_core.data.inspect import inspect_dataset

    rep = inspect_dataset(caseops_demo_data.dataset_dir, text_chars=200)
    docs = _original_val_docs(caseops_demo_data.manifest())
    assert rep.totals["val"]["bytes"] == sum(len(d.encode("utf-8")) for d in docs)
    # what SentencePiece keeps of the first document: NFKC, whitespace runs as one space
    assert rep.first_text == " ".join(unicodedata.normalize("NFKC", docs[0]).split())[:200]
