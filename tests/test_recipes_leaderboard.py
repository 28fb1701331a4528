"""`golf recipes` reads as the leaderboard did: record recipes first, each with its reported score,
legality and date, newest first."""
from __future__ import annotations

import json
import re

from golf_core import tomlio
from golf_core.cli import leaderboard_order, main
from golf_core.recipe import RECIPES_DIR


def _rows(capsys):
    assert main(["recipes", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_records_come_first_newest_first(capsys):
    rows = _rows(capsys)
    records = [r for r in rows if r.get("reported_val_bpb") is not None and r.get("date")]
    assert rows[: len(records)] == records
    keys = [(r["date"], -r["reported_val_bpb"]) for r in records]
    assert keys == sorted(keys, reverse=True)
    names = [r["name"] for r in records]
    # the order of the records' own dates (records/track_10min_16mb folders), oldest last
    known = [n for n in ("pr1855", "pr1851", "pr1787", "pr1736", "pr1729", "pr1413", "pr1394", "pr1306", "pr1229",
                         "baseline") if n in names]
    assert [n for n in names if n in known] == known


def test_every_record_recipe_has_a_date_and_a_legality():
    for p in sorted(RECIPES_DIR.glob("*.toml")):
        meta = tomlio.load_file(p).get("meta", {})
        if meta.get("reported_val_bpb") is not None and str(meta.get("source", "")).startswith("openai/parameter-golf"):
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(meta.get("date", ""))), \
                f"{p.name}: [meta] date = \"YYYY-MM-DD\" (its records/ folder's date) is missing"
            assert meta.get("legality"), f"{p.name}: [meta] legality is missing"


def test_the_table_prints_score_legality_and_date(capsys):
    assert main(["recipes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["recipe", "val_bpb", "legality", "date"]
    assert re.match(r"\S+\s+\d\.\d{5}\s+\S+\s+\d{4}-\d{2}-\d{2}\s", lines[1])


def test_same_date_puts_the_better_score_first_and_undated_rows_last():
    rows = [{"name": "c", "reported_val_bpb": 1.1, "date": "2026-04-27"},
            {"name": "x"},
            {"name": "b", "reported_val_bpb": 1.0, "date": "2026-04-27"},
            {"name": "a", "reported_val_bpb": 0.9, "date": "2026-04-01"},
            {"name": "w", "reported_val_bpb": 0.8}]
    assert [r["name"] for r in leaderboard_order(rows)] == ["b", "c", "a", "w", "x"]
