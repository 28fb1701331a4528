"""``golf eval ARTIFACT``: rebuild the model from ``artifact.bin`` alone and score it."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Optional

from ..errors import ArtifactError


def required_plugins(header_plugins: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The recorded plugins without which the artifact cannot be decoded or scored as it was."""
    return [p for p in header_plugins if p.get("required_on_load") or p.get("eval_hooks")]


def check_plugins(header_plugins: list[dict[str, Any]], reg: Any, source: str, allow_version_mismatch: bool = False) -> list[str]:
    """Refuse (ArtifactError) when a required plugin is missing, broken or of another version.

    :return: names of recorded plugins that are not needed to score and are not installed
        (they are left out of the rebuilt recipe).
    """
    dropped = []
    for p in header_plugins:
        entry = reg.plugins.get(p["name"])
        needed = p in required_plugins(header_plugins)
        if entry is None or not entry.ok:
            if needed:
                why = "not installed" if entry is None else f"broken ({entry.error})"
                raise ArtifactError(f"{source} needs plugin {p['name']!r} {p.get('version', '')} to be rebuilt and scored; it is {why}"
                                    f" (pip install golf-{p['name']}=={p.get('version', '')})")
            dropped.append(p["name"])
            continue
        if needed and p.get("version") and entry.version != p["version"] and not allow_version_mismatch:
            raise ArtifactError(f"{source} was written with {p['name']} {p['version']}, installed is {entry.version}; "
                                f"install that version or pass --allow-version-mismatch")
    return dropped


def evaluate_artifact(path: Path, data_root: Optional[str] = None, allow_version_mismatch: bool = False,
                      echo: bool = True, overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    """Rebuild the recipe and model recorded in ``path`` and score it like the run did."""
    from ..run import Run, make_context
    from ..plugins import registry
    from ..quant.artifact import read_artifact
    from ..recipe import apply_override, validate_recipe_data

    art = read_artifact(path)
    recipe_data = art.extra.get("recipe")
    if not isinstance(recipe_data, dict):
        raise ArtifactError(f"{path} records no recipe; it was not written by golf run")
    reg = registry()
    dropped = check_plugins(art.plugins, reg, str(path), allow_version_mismatch)
    recipe_data = json.loads(json.dumps(recipe_data))
    recipe_data["plugins"] = [p for p in recipe_data.get("plugins", []) if p not in dropped]
    for name in dropped:  # their [options] tables would name unknown plugins
        recipe_data.get("options", {}).pop(name, None)
    data = recipe_data.setdefault("data", {})
    if not isinstance(data, dict):
        raise ArtifactError(f"{path} records an invalid [data] table")
    # a path recorded in the artifact is never one golf writes to: the demo data is built (when
    # missing) under --data or the default data root, never under the artifact's data.root
    data.pop("root", None)
    if data_root:
        data["root"] = data_root
        for k in ("dataset_dir", "tokenizer_path"):
            data.pop(k, None)
    for o in overrides:
        apply_override(recipe_data, o)
    recipe = validate_recipe_data(recipe_data, str(path))
    from ..data.preflight import preflight_eval

    preflight_eval(recipe)
    with Run(make_context(recipe, None, reg=reg, echo=echo)) as run:
        run.load_artifact(path)
        result = run.eval()
    return {"val_bpb": result.val_bpb, "val_loss": result.val_loss, "val_tokens": result.tokens,
            "val_bytes": result.bytes, "model_bytes": path.stat().st_size, "plugins": recipe.plugins,
            "dropped_plugins": dropped, "coverage_exactly_once": bool(result.coverage_ok)}


def cmd_eval(args: argparse.Namespace) -> int:
    """golf eval: score an artifact."""
    res = evaluate_artifact(Path(args.artifact), args.data, args.allow_version_mismatch, echo=not args.json,
                            overrides=tuple(args.overrides))
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"val_bpb:{res['val_bpb']:.8f} val_loss:{res['val_loss']:.8f} val_tokens:{res['val_tokens']} "
              f"model_bytes:{res['model_bytes']}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``golf eval``."""
    p = subparsers.add_parser("eval", help="rebuild a model from artifact.bin alone and score it",
                              description="Rebuild the model from ARTIFACT using the plugins it records "
                                          "(refusing when one it needs is missing or of another version) and score it.")
    p.add_argument("artifact", help="an artifact.bin written by golf run")
    p.add_argument("--data", metavar="DIR", help="data root holding datasets/ and tokenizers/ (default: $GOLF_DATA_DIR or the default root; "
                        "the artifact's own data.root is never used)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override an eval setting, e.g. --set eval.stride=64")
    p.add_argument("--allow-version-mismatch", action="store_true", help="score even if a plugin's version differs")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_eval)
