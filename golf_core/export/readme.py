"""``README.md`` of an export: results, techniques (lineage, legality), compliance, how to rerun."""
from __future__ import annotations

import json
from typing import Any, Optional

from .runs import RunRecord


def technique_rows(plugins: list[str], options: dict[str, Any]) -> list[dict[str, Any]]:
    """Each plugin's TechniqueInfo as plain data (from the installed plugin; missing ones say so)."""
    from ..plugins import registry

    reg = registry()
    rows = []
    for name in plugins:
        entry = reg.plugins.get(name)
        info = entry.info if entry is not None and entry.ok else None
        rows.append({
            "name": name,
            "version": entry.version if entry is not None else "",
            "summary": info.summary if info else "(plugin not installed where this was exported)",
            "lineage": list(info.lineage) if info else [],
            "legality": info.legality if info else "",
            "reported_delta": info.reported_delta if info else "",
            "required_on_load": bool(info.required_on_load) if info else False,
            "options": options.get(name, {}),
        })
    return rows


def _fmt(v: Any, digits: int = 8) -> str:
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def readme_text(runs: list[RunRecord], sub: dict[str, Any], code_bytes: int, compressed: bool,
                tracks: Optional[dict[str, str]] = None, codec: str = "lzma", compact: bool = False,
                prep_script: str = "") -> str:
    """The README.md text (``codec``: the self-extractor of ``train_gpt.py``; ``compact``:
    it is the counted compact script; ``prep_script``: the data preparation file beside it)."""
    first = runs[0]
    recipe = first.recipe
    meta = recipe.get("meta", {})
    plugins = first.result.get("plugins", [])
    tracks = tracks or first.result.get("legality", {}).get("plugins", {})
    out: list[str] = [f"# {sub['name']}", "", sub["blurb"], ""]
    if meta.get("notes"):
        out += [meta["notes"], ""]

    out += ["## Results", "",
            f"val_bpb **{sub['val_bpb']:.8f}** (mean of {len(runs)} seed{'s' if len(runs) > 1 else ''}, "
            f"std {sub['val_bpb_std']:.8f}), val_loss {sub['val_loss']:.8f}. Method: {sub['val_bpb_method']}.", "",
            "| seed | val_bpb | val_loss | pre-quant val_bpb | steps | train s | eval s | model bytes | artifact bytes |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        res = r.result
        out.append(f"| {r.seed} | {_fmt(res['val_bpb'])} | {_fmt(res['val_loss'])} | {_fmt(res.get('pre_quant_val_bpb', ''))} "
                   f"| {res.get('steps', '')} | {_fmt(res.get('train_seconds', ''), 1)} | {_fmt(res.get('eval_seconds', ''), 1)} "
                   f"| {res.get('model_bytes', '')} | {sub['seed_results'][str(r.seed)]['artifact_bytes']} |")
    cap = int(first.result.get("cap_bytes", 16_000_000))
    wrapper = (f"{codec} self-extracting, the blob as 7-bit text" if compact else f"{codec}+base85 self-extracting") \
        if compressed else "plain source"
    kind = ("compact: only the definitions the run reaches, the recipe's values folded in and the branches they "
            "rule out dropped, prose stripped, minified by python-minifier; "
            f"{codec} chosen as the smaller of the lzma and brotli wrappers" if compact else "readable bundle of whole modules")
    out += ["", f"Bytes: code {code_bytes} (`train_gpt.py`, {wrapper}; {kind}) "
                f"+ model (largest seed) = {sub['bytes_total']} of the {cap:,}-byte cap "
                f"({'under' if sub['bytes_total'] <= cap else 'OVER'} by {abs(cap - sub['bytes_total']):,}).",
            f"Hardware: {sub['hardware']}, PyTorch {sub['pytorch_version']}.", ""]

    out += ["## Techniques", ""]
    if not plugins:
        out += ["None: the challenge's naive baseline.", ""]
    for t in technique_rows(plugins, recipe.get("options", {})):
        out.append(f"### {t['name']} {t['version']}".rstrip())
        out += ["", t["summary"], ""]
        out.append(f"- lineage: {', '.join(t['lineage']) or '-'}")
        out.append(f"- legality: {tracks.get(t['name'], t['legality']) or '-'}")
        if t["reported_delta"]:
            out.append(f"- reported: {t['reported_delta']}")
        out.append(f"- needed to rebuild the artifact: {'yes' if t['required_on_load'] else 'no'}")
        if t["options"]:
            out.append("- options: " + ", ".join(f"`{k} = {json.dumps(v)}`" for k, v in t["options"].items()))
        out.append("")

    comp = sub["compliance"]
    out += ["## Compliance", "",
            f"Legality track: **{comp['track']}** (declared: {comp['declared']}); trains on validation data: "
            f"{'yes' if comp['trains_on_validation'] else 'no'}.", ""]
    for k, v in comp["checks"].items():
        out.append(f"- [{'x' if v else ' '}] {k.replace('_', ' ')}")
    reads = [rd for r in runs for rd in r.result.get("legality", {}).get("validation_reads", [])]
    out.append(f"- validation reads outside the eval phase: {len(reads)}" + (
        " (" + "; ".join(f"{rd.get('phase')}: {rd.get('reason')}" for rd in reads[:5]) + ")" if reads else ""))
    out.append("")
    for r in runs:
        if r.compliance is None:
            continue
        c = r.compliance
        out += [f"`golf check` (compliance.json{'' if len(runs) == 1 else f', seed {r.seed}'}): "
                f"**{'passed' if c.get('passed') else 'FAILED'}**", "",
                "| rule | verdict | evidence |", "|---|---|---|"]
        for rule in c.get("rules", []):
            if isinstance(rule, dict):
                ev = " ".join(str(rule.get("evidence", "")).split()).replace("|", "/")
                out.append(f"| {rule.get('title') or rule.get('rule')} | {rule.get('verdict')} | {ev} |")
        out.append("")

    data = recipe.get("data", {})
    out += ["## Reproduce", "", "```",
            "pip install -r requirements.txt",
            f"python train_gpt.py --seed {first.seed}            # one process",
            f"torchrun --standalone --nproc_per_node=8 train_gpt.py --seed {first.seed}",
            "```", "",
            ("The script carries the golf code the run reaches (and its plugins' code), trimmed to the functions, "
             "classes and constants it uses; golf itself need not be installed. " if compact else
             "The script carries every golf module the run could use and its plugins' code; golf itself need not be "
             "installed. ") +
            ("The resolved recipe is baked in (validated when the script was written): `--seed N` and `--data DIR` "
             "change the seed and the data root, `--out DIR` names the run directory." if compact else
             "`--set KEY=VALUE` overrides a recipe value, `--out DIR` names the run directory, "
             "`--print-recipe` shows the embedded recipe.")]
    if prep_script:
        out.append(f"Data preparation is not in `train_gpt.py` and not counted in its code bytes (like the records' "
                   f"download and tokenizer scripts beside theirs): run `python {prep_script}` (same `--data` "
                   f"option) first.")
    if data.get("source", "demo") == "demo":
        out.append("Data: the demo corpus is built from the interpreter's own documentation into `$GOLF_DATA_DIR` "
                   f"(default `~/.cache/golf/data`) by {'`' + prep_script + '`' if prep_script else 'the script on first use'}.")
    else:
        out.append(f"Data: `--data DIR` holding `datasets/fineweb10B_sp{data.get('vocab_size')}/` and "
                   f"`tokenizers/fineweb_{data.get('vocab_size')}_bpe.model` "
                   f"(`golf data download --variant sp{data.get('vocab_size')}`).")
    out += ["", "## Files", "",
            "- `train_gpt.py`: the whole training, quantization and scoring code with the resolved recipe",
            *([f"- `{prep_script}`: data preparation (demo corpus and tokenizer, or a check of the downloaded "
               f"FineWeb files); not counted"] if prep_script else []),
            "- `submission.json`, `requirements.txt`",
            *[f"- `train_seed{r.seed}.log`: the run's log" for r in runs if r.train_log], "",
            f"Exported by golf {first.manifest.get('golf_core', '')} from a run of `{meta.get('source') or 'a custom recipe'}` "
            f"(resolved recipe sha256 `{first.result.get('recipe_sha256', '')}`)."]
    return "\n".join(out) + "\n"
