"""golf check against adversarial plugins from outside the repository (tests/check_adversaries.py,
copied to a temporary folder and registered in-process; the audit processes import it from
there), one or more per class of cheat of issue 15, and honest adapters beside them.

A tiny 2-layer core recipe is trained and checked once; eval adapters are then checked on a copy
of its run directory with the adapter swapped in (decode + scoring on disk), pre-quant
adversaries by checking a recipe that names them (a 1-step training each)."""
from __future__ import annotations

import importlib
import json
import shutil
import sys
from pathlib import Path

import pytest

from golf_core.check import FAIL, PASS, CheckOptions, check_recipe, check_run_dir
from golf_core.recipe import apply_override, load_recipe_text, validate_recipe_data
from golf_core.tiny import apply_tiny

SHORT = ["model.num_layers=2", "train.iterations=1", "train.warmup_steps=0", "eval.max_tokens=1025",
         "eval.stride=64", "eval.batch_tokens=8192"]
OPTS = dict(cuts=6, cuts_b=1, whole_cuts=1, flips=24, workers=1, echo=False)


@pytest.fixture(scope="module")
def adversaries(tmp_path_factory):
    """The adversaries module, copied outside the repository and registered in-process."""
    from golf_core import plugins as P

    d = tmp_path_factory.mktemp("outside")
    shutil.copy(Path(__file__).with_name("check_adversaries.py"), d / "golf_adversaries_ext.py")
    sys.path.insert(0, str(d))
    mod = importlib.import_module("golf_adversaries_ext")
    old = P._REGISTRY
    reg = P.PluginRegistry.discover()
    for cls in mod.ADAPTERS:
        reg.add(cls.name, cls())
    for name, cls in mod.PREQUANT.items():
        reg.add(name, cls())
    P.set_registry(reg)
    try:
        yield mod
    finally:
        P.set_registry(old)
        sys.path.remove(str(d))


def _recipe(plugins: str = "[]"):
    data = apply_tiny(load_recipe_text(f"plugins = {plugins}\n", "core.toml").to_dict())
    for o in SHORT:
        apply_override(data, o)
    recipe = validate_recipe_data(data, "core.toml")
    recipe.tiny = True
    return recipe


@pytest.fixture(scope="module")
def core_run(tmp_path_factory, adversaries, demo_data):
    out = tmp_path_factory.mktemp("check") / "core"
    return out, check_recipe(_recipe(), out, CheckOptions(seed=5, **{**OPTS, "cuts": 3}))


def _adapter(core_run, tmp_path, name, seed=11):
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
    return check_run_dir(dst, None, CheckOptions(seed=seed, **OPTS))


def _verdicts(rep):
    return {r.id: r.verdict for r in rep.rules}


@pytest.mark.slow
def test_core_recipe_passes_and_records_the_audit(core_run):
    out, rep = core_run
    assert rep.passed, rep.table()
    v = _verdicts(rep)
    assert v["causality"] == v["audit_reproduces"] == v["normalization"] == PASS
    assert v["document_independence"] == "n/a" and v["train_clock"] == "not judged"
    data = json.loads((out / "compliance.json").read_text())
    assert data["seed"] == 5 and data["probes"] >= 50 and data["tolerance"]["cap"] == 1e-4
    assert data["rows_checked"]["reported_run"] == 1024
    assert {c["geometry"] for c in data["flip"]["cuts"]} == {"A", "B"}
    assert data["flip"]["geometries"] == {"A": 8, "B": 3}
    assert (out / "artifact.bin").is_file() and (out / "result.json").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["honest", "honest-context-bias", "honest-doc-order"])
def test_honest_adapters_pass(core_run, tmp_path, name):
    rep = _adapter(core_run, tmp_path, name)
    assert rep.passed, rep.table()


# name -> (class, the rules that must fail; one of them when several are listed with "|")
CAUGHT = {
    "disk-peek": (1, ["no_validation_before_scoring", "causality"]),
    "first-run-only": (2, ["causality|audit_reproduces"]),
    "out-dir-only": (2, ["causality"]),
    "full-stream-only": (2, ["causality"]),
    "late-peek": (3, ["causality"]),
    "wide-batch-peek": (3, ["causality"]),
    "noisy-peek": (4, ["audit_reproduces", "causality"]),
    "faint-noisy-peek": (4, ["causality"]),
    "target-bonus-sometimes": (5, ["targets_after_scoring"]),
    "drop-columns": (5, ["normalization"]),
    "nan-rows": (5, ["normalization"]),
    "doc-start-peek": (6, ["causality"]),
    "window-edge-peek": (6, ["causality"]),
    "batch-y-fit": (7, ["targets_after_scoring"]),
    "batch-x-fit": (7, ["causality"]),
    "session-tokens": (7, ["causality"]),
    "doc-update-first": (7, ["score_before_update"]),
    "doc-row-peek": (6, ["causality"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CAUGHT))
def test_adversarial_adapter_is_caught(core_run, tmp_path, name):
    rep = _adapter(core_run, tmp_path, name)
    v = _verdicts(rep)
    assert not rep.passed, rep.table()
    for rule in CAUGHT[name][1]:
        assert any(v[r] == FAIL for r in rule.split("|")), (rule, rep.table())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["disk-prequant", "memmap-prequant"])
def test_prequant_reading_validation_from_disk_is_caught(tmp_path, adversaries, demo_data, name):
    """Class 1: a pre-quant plugin that reads the val shard itself: the audit hook sees the open,
    and the artifact differs between runs whose shards on disk differ."""
    rep = check_recipe(_recipe(f'["{name}"]'), tmp_path / name,
                       CheckOptions(seed=3, **{**OPTS, "cuts": 2, "whole_cuts": 2}))
    v = _verdicts(rep)
    assert v["no_validation_before_scoring"] == FAIL, rep.table()
    assert "open" in rep.rule("no_validation_before_scoring").evidence and "pre_quant" in \
        rep.rule("no_validation_before_scoring").evidence
    if name == "memmap-prequant":   # it reads token 1, which the stream-start run flips
        assert v["audit_reproduces"] == FAIL and "artifact differs" in rep.rule("audit_reproduces").evidence


def test_every_class_has_two_adversaries():
    from collections import Counter

    per = Counter(c for c, _ in CAUGHT.values())
    per[1] += 2   # the two pre-quant adversaries
    assert all(per[k] >= 2 for k in range(1, 8)), per
