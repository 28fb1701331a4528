"""golf export's records folder on synthetic run directories (no training): runs and seed
folders, submission.json against hand computations, README, requirements pins, the command,
and the refusals (changed code, in-process plugins, mixed recipes)."""
from __future__ import annotations

import importlib.metadata as md
import json
import math
from pathlib import Path

import pytest

from golf_core.cli import main
from golf_core.export import ExportError
from golf_core.export.folder import export_runs
from golf_core.export.requirements import BASE_REQUIREMENTS, COMPACT_REQUIREMENTS, requirement_names
from golf_core.export.runs import read_runs
from golf_core.export.script import is_compressed, unwrap
from golf_core.export.submission import SubmissionInfo
from golf_core.recipe import Recipe


def make_run(d: Path, seed: int, val_bpb: float, model_bytes: int = 1000, *, layers: int = 2, code=None,
             log: bool = True) -> Path:
    """A finished run directory as golf run leaves it (baseline recipe, no plugins)."""
    d.mkdir(parents=True)
    recipe = Recipe()
    recipe.train.seed = seed
    recipe.model.num_layers = layers
    (d / "resolved.toml").write_text(recipe.to_toml())
    result = {
        "val_bpb": val_bpb, "val_loss": val_bpb * 1.7, "pre_quant_val_bpb": val_bpb - 0.01, "steps": 10 + seed % 7,
        "train_seconds": 1.25, "eval_seconds": 0.5, "code_bytes": 5, "model_bytes": model_bytes,
        "artifact_bytes": model_bytes + 5, "cap_bytes": 16_000_000, "under_cap": True, "plugins": [], "seed": seed,
        "world_size": 1, "recipe_sha256": recipe.sha256(),
        "legality": {"track": "fixed-predictor", "trains_on_validation": False, "declared": "fixed-predictor",
                     "plugins": {}, "validation_reads": [], "passed": True,
                     "checks": {"under_cap": True, "coverage_exactly_once": True}},
    }
    if code is not None:
        result["code"] = code
    (d / "result.json").write_text(json.dumps(result))
    (d / "manifest.json").write_text(json.dumps({"golf_core": "0.1.0", "torch": "2.x", "device": {"type": "cpu"},
                                                 "world_size": 1, "plugins": []}))
    if log:
        (d / "train.log").write_text(f"seed {seed} log\n")
    return d


def test_one_run_or_a_folder_of_seed_runs(tmp_path):
    single = make_run(tmp_path / "single", 7, 1.5)
    assert [r.seed for r in read_runs(single)] == [7]
    make_run(tmp_path / "seeds" / "b", 42, 1.2)
    make_run(tmp_path / "seeds" / "a", 1337, 1.1)
    make_run(tmp_path / "seeds" / "c", 3, 1.3)
    (tmp_path / "seeds" / "not-a-run").mkdir()
    assert [r.seed for r in read_runs(tmp_path / "seeds")] == [3, 42, 1337]


def test_seed_folders_must_hold_one_recipe_with_distinct_seeds(tmp_path):
    make_run(tmp_path / "dup" / "a", 1, 1.1)
    make_run(tmp_path / "dup" / "b", 1, 1.2)
    with pytest.raises(ExportError, match="both have seed 1"):
        read_runs(tmp_path / "dup")
    make_run(tmp_path / "mixed" / "a", 1, 1.1)
    make_run(tmp_path / "mixed" / "b", 2, 1.2, layers=3)
    with pytest.raises(ExportError, match="'model.num_layers'"):
        read_runs(tmp_path / "mixed")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match="neither a finished run"):
        read_runs(tmp_path / "empty")


def test_submission_json_and_files_for_seed_runs(tmp_path):
    bpbs = {1337: 1.1, 42: 1.2, 2025: 1.13}
    models = {1337: 1000, 42: 1500, 2025: 1200}
    for s in bpbs:
        make_run(tmp_path / "runs" / f"seed{s}", s, bpbs[s], models[s], log=s != 2025)
    rep = export_runs(tmp_path / "runs", tmp_path / "out", info=SubmissionInfo(author="A. Golfer", github_id="golfer"))
    out = tmp_path / "out"
    assert rep.seeds == [42, 1337, 2025]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["train_gpt.py", "prepare_data.py", "README.md", "submission.json", "requirements.txt", "train_seed42.log",
             "train_seed1337.log"])
    code = len((out / "train_gpt.py").read_bytes())
    assert rep.code_bytes == code
    sub = json.loads((out / "submission.json").read_text())
    for key in ("author", "github_id", "name", "blurb", "date", "val_loss", "val_bpb", "bytes_total", "bytes_code",
                "track", "val_bpb_std", "seeds", "seed_results", "hardware", "pytorch_version"):
        assert key in sub, key
    vals = [1.2, 1.1, 1.13]
    mean = sum(vals) / 3
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / 2)
    assert sub["val_bpb"] == pytest.approx(mean, abs=1e-15) and sub["val_bpb_std"] == pytest.approx(std, abs=1e-15)
    assert sub["val_loss"] == pytest.approx(1.7 * mean, abs=1e-12)
    assert sub["seeds"] == [42, 1337, 2025] and sub["author"] == "A. Golfer" and sub["github_id"] == "golfer"
    assert sub["bytes_code"] == code and sub["bytes_total"] == code + 1500
    assert sub["seed_results"]["1337"] == {"val_loss": 1.1 * 1.7, "val_bpb": 1.1, "artifact_bytes": code + 1000,
                                           "steps": 10 + 1337 % 7, "train_time_ms": 1250, "eval_time_ms": 500}
    assert sub["track"] == "non_record_16mb" and sub["hardware"] == "1xcpu" and sub["pytorch_version"] == "2.x"
    assert sub["compliance"]["passed"] is True
    # the script embeds the lowest seed's recipe; the others are --seed away
    assert "'train': {'seed': 42," in unwrap((out / "train_gpt.py").read_text())  # baked (golf_core.export.driver)
    readme = (out / "README.md").read_text()
    for part in ("## Results", "## Techniques", "## Compliance", "## Reproduce", "| 2025 |", "--seed 42"):
        assert part in readme, part
    # no code record: a superset, with a warning
    assert rep.recorded_code_bytes is None and not rep.exact and any("no code record" in w for w in rep.warnings)


def test_requirements_are_pinned_from_this_environment(tmp_path):
    make_run(tmp_path / "run", 1, 1.0)
    export_runs(tmp_path / "run", tmp_path / "out")
    text = (tmp_path / "out" / "requirements.txt").read_text()
    pins = dict(line.split("==") for line in text.splitlines() if line and not line.startswith("#"))
    for name in COMPACT_REQUIREMENTS:
        dist = md.distribution(name)
        assert pins[dist.metadata["Name"]] == dist.version
    # the compact scripts' drivers are baked (golf_core.export.driver): no pydantic, no pluggy
    names = {n.lower() for n in requirement_names(text)}
    assert set(COMPACT_REQUIREMENTS) <= names and not names & {"pydantic", "pluggy"}
    # the readable bundle carries the validating driver: both
    export_runs(tmp_path / "run", tmp_path / "readable", readable=True)
    names = {n.lower() for n in requirement_names((tmp_path / "readable" / "requirements.txt").read_text())}
    assert set(BASE_REQUIREMENTS) <= names


def test_export_is_deterministic_and_optionally_uncompressed(tmp_path):
    make_run(tmp_path / "run", 1, 1.0)
    a = export_runs(tmp_path / "run", tmp_path / "a")
    b = export_runs(tmp_path / "run", tmp_path / "b")
    assert (tmp_path / "a" / "train_gpt.py").read_bytes() == (tmp_path / "b" / "train_gpt.py").read_bytes()
    plain = export_runs(tmp_path / "run", tmp_path / "plain", compress=False)
    readable = export_runs(tmp_path / "run", tmp_path / "readable", readable=True)
    text = (tmp_path / "plain" / "train_gpt.py").read_text()
    assert not is_compressed(text) and is_compressed((tmp_path / "a" / "train_gpt.py").read_text())
    assert text == unwrap((tmp_path / "readable" / "train_gpt.py").read_text())
    assert plain.code_bytes > readable.code_bytes > a.code_bytes == b.code_bytes


def test_changed_code_is_refused_unless_allowed(tmp_path):
    code = {"version": 1, "code_bytes": 5, "sha256": "0" * 64, "compressed": True, "exportable": True,
            "missing": [], "plugins": [],
            "modules": {"golf_core": "000000000000", "golf_core.run.driver": "000000000000"}}
    make_run(tmp_path / "run", 1, 1.0, code=code)
    with pytest.raises(ExportError, match=r"golf_core changed since the run \(and 1 more"):
        export_runs(tmp_path / "run", tmp_path / "out")
    rep = export_runs(tmp_path / "run", tmp_path / "out", allow_changed_code=True)
    assert not rep.exact and any("shipping the current code" in w for w in rep.warnings)


def test_in_process_plugins_cannot_be_exported(tmp_path):
    code = {"version": 1, "code_bytes": 5, "sha256": "0" * 64, "compressed": True, "exportable": False,
            "missing": [], "modules": {}, "plugins": [["recorder", None, "0", "test_hooks"]]}
    make_run(tmp_path / "run", 1, 1.0, code=code)
    with pytest.raises(ExportError, match="'recorder' was an in-process object"):
        export_runs(tmp_path / "run", tmp_path / "out")


def test_the_command(tmp_path, capsys):
    make_run(tmp_path / "run", 5, 1.0)
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "out"), "--no-compress",
                 "--name", "My run", "--track", "non_record_16mb"]) == 0
    printed = capsys.readouterr()
    assert "train_gpt.py:" in printed.out and "no code record" in printed.err
    assert json.loads((tmp_path / "out" / "submission.json").read_text())["name"] == "My run"
    assert main(["export", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("golf: error:") and "nowhere" in err[0]


def test_golf_check_compliance_goes_into_readme_and_submission(tmp_path):
    run = make_run(tmp_path / "run", 1, 1.0)
    (run / "compliance.json").write_text(json.dumps({
        "passed": False, "failed": ["causal"],
        "rules": [{"rule": "causal", "title": "Strict causal dependence", "verdict": "FAIL", "evidence": "score | moved"},
                  {"rule": "cap", "title": "Artifact under the cap", "verdict": "PASS", "evidence": "1,005 bytes"}]}))
    export_runs(run, tmp_path / "out")
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "**FAILED**" in readme and "| Strict causal dependence | FAIL | score / moved |" in readme
    sub = json.loads((tmp_path / "out" / "submission.json").read_text())
    assert sub["compliance"]["golf_check"] == {"passed": False, "failed": ["causal"],
                                               "rules": {"causal": "FAIL", "cap": "PASS"}}
