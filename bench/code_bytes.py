"""Code bytes per shipped recipe: the compact ``train_gpt.py`` (what ``code_bytes`` counts)
against the readable bundle and the record's own counted ``train_gpt.py``, with the largest
contributors (definitions, by minified size) of each compact script.

    python bench/code_bytes.py [RECIPE ...] [--top N]

Prints a table and writes ``bench/results/code_bytes.json``. Every shipped recipe is measured;
the record's figure is the recipe's own ``[meta] code_bytes`` (the size of the record's counted
``train_gpt.py`` in openai/parameter-golf ``records/track_10min_16mb/<folder>/``, self-extracting
where the record wrapped it), and it is the target; recipes that reproduce no merged record
have none (the demo's target is the issue's 12,000). CPU only, no data needed.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from golf_core import tomlio  # noqa: E402
from golf_core.export.bundle import plugin_refs, tree_for  # noqa: E402
from golf_core.export.compact import build_compact, minify, shake_run  # noqa: E402
from golf_core.export.shipping import ship_readable  # noqa: E402
from golf_core.export.strip import strip_prose  # noqa: E402
from golf_core.plugins import activate  # noqa: E402
from golf_core.recipe import load_recipe  # noqa: E402

#: The issue's target for the demo (it reproduces no record).
TARGETS = {"demo": 12_000}


def record_code_bytes(name: str) -> Optional[int]:
    """``[meta] code_bytes`` as the recipe's own file states it (not inherited through
    ``extends``: a recipe derived from a record is not that record)."""
    path = REPO / "recipes" / f"{name}.toml"
    if not path.is_file():
        return None
    return tomlio.loads(path.read_text("utf-8")).get("meta", {}).get("code_bytes")


def contributors(shaker, top: int) -> list[dict]:
    """The ``top`` largest kept definitions, by minified size."""
    rows = []
    for module in shaker.modules():
        for label, src in shaker.unit_sources(module):
            rows.append({"def": label, "minified_bytes": len(minify(strip_prose(src)).encode())})
    rows.sort(key=lambda r: -r["minified_bytes"])
    return rows[:top]


def by_module(compact) -> list[dict]:
    """Minified bytes per module, largest first."""
    return sorted(({"module": m, "minified_bytes": len(c.encode())} for m, c in compact.modules.items()),
                  key=lambda r: -r["minified_bytes"])


def measure(name: str, top: int) -> dict:
    """One recipe's figures."""
    recipe = load_recipe(name)
    active = activate(recipe)
    plugins = plugin_refs(active)
    tree = tree_for(plugins, {})
    t0 = time.perf_counter()
    compact = build_compact(tree, recipe.to_toml(), plugins)
    seconds = time.perf_counter() - t0
    readable = ship_readable(plugins, recipe.to_toml(), dict.fromkeys(tree.modules, True))
    shaker = shake_run(tree, plugins, recipe_toml=recipe.to_toml())
    record = record_code_bytes(name)
    target = record or TARGETS.get(name)
    return {
        "recipe": name,
        "compact_bytes": compact.code_bytes,
        "codec": compact.codec,
        "compact_source_bytes": len(compact.source.encode()),
        "compact_modules": len(compact.modules),
        "readable_bytes": readable.code_bytes,
        "readable_modules": len(readable.modules),
        "record_bytes": record,
        "target_bytes": target,
        "meets_target": None if target is None else compact.code_bytes <= target,
        "build_seconds": round(seconds, 2),
        "top_modules": by_module(compact)[:top],
        "top_definitions": contributors(shaker, top),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("recipes", nargs="*", help="recipe names (default: every shipped recipe)")
    p.add_argument("--top", type=int, default=8, help="contributors listed per recipe")
    args = p.parse_args(argv)
    names = args.recipes or sorted(f.stem for f in (REPO / "recipes").glob("*.toml"))
    rows = [measure(n, args.top) for n in names]
    print(f"{'recipe':<14} {'compact':>8} {'codec':>6} {'readable':>9} {'record':>8} {'target':>8}  ok")
    for r in rows:
        rec = f"{r['record_bytes']:,}" if r["record_bytes"] else "-"
        tgt = f"{r['target_bytes']:,}" if r["target_bytes"] else "-"
        ok = "-" if r["meets_target"] is None else ("yes" if r["meets_target"] else "NO")
        print(f"{r['recipe']:<14} {r['compact_bytes']:>8,} {r['codec']:>6} {r['readable_bytes']:>9,} {rec:>8} {tgt:>8}  {ok}")
    for r in rows:
        print(f"\n{r['recipe']}: largest definitions (minified bytes, before compression)")
        for c in r["top_definitions"]:
            print(f"  {c['minified_bytes']:>6}  {c['def']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "code_bytes.json"
    out.write_text(json.dumps({"recipes": rows}, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
