"""Ablations: expand a recipe into plugin-toggled variants, run them with several seeds, and
compare every variant with the base.

Variants (``toggles`` = the plugins named by ``--toggle``, in the order given):

* ``one-at-a-time``: the base is the recipe WITHOUT any toggled plugin; one variant per
  toggled plugin adds that plugin alone (``+a``, ``+b``, ...). Answers "what does each trick
  bring on its own?".
* ``leave-one-out``: the base is the recipe WITH every toggled plugin; one variant per toggled
  plugin removes it (``-a``, ``-b``, ...). Answers "what does each trick bring to the full
  stack?".
* ``grid``: every subset of the toggled plugins; the base is the empty subset, the variants
  are the other ``2^k - 1`` subsets (``+a``, ``+b``, ``+a+b``, ...), smallest first.

Position rule: a toggled plugin that the recipe already lists keeps its place; one that it
does not list goes after the recipe's plugins, in ``--toggle`` order. Every variant's plugin
list is the matching sub-sequence of that one canonical list, so two variants never differ in
order, only in membership.

Seeds: ``n_seeds`` runs per variant with ``train.seed`` = the recipe's seed (after ``--set``),
+1, +2, ... The same seeds are used by every variant.

Each run is a normal run directory ``OUT/<variant>/seed<S>/`` made by the same code path as
``golf run`` with the overrides ``plugins=[...]`` and ``train.seed=S`` appended to the user's
``--set`` list (each run's ``command`` in ablation.json repeats it). Every variant is resolved
and validated (``load_recipe`` + ``plugins.activate``) before anything runs. The base runs
first, then the variants, one after another. A run whose ``result.json`` is complete is
skipped when the command is repeated (crash resume); an incomplete run directory is moved
aside to ``seed<S>.incomplete`` and run again. ``OUT/ablation.json`` is rewritten after every
run; the report files (ablation.md, ablation.png, curves.png) are written at the end.
"""
from __future__ import annotations

import itertools
import json
import math
import os
import re
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from . import stats
from .errors import GolfError
from .recipe import Recipe, load_recipe

MODES = ("one-at-a-time", "leave-one-out", "grid")
#: Keys a result.json must hold for its run to count as complete.
REQUIRED_RESULT_KEYS = ("val_bpb", "plugins")
SCHEMA_VERSION = 1

#: ``runner(recipe, run_dir) -> result dict``: one run, the code path of ``golf run``.
Runner = Callable[[Recipe, Path], dict]
#: ``validate(recipe) -> None``: raises GolfError when the recipe cannot run.
Validator = Callable[[Recipe], Any]


class AblationError(GolfError):
    """An ablation that cannot be planned, or whose output folder holds a different ablation."""


@dataclass
class Variant:
    """One plugin configuration of an ablation."""

    name: str                 # "base", "+a", "-a", "+a+b"
    slug: str                 # its directory name under OUT
    plugins: list[str]        # the full ordered plugin list of the variant
    toggled_on: list[str]     # which toggled plugins it contains (canonical order)

    @property
    def is_base(self) -> bool:
        """True for the reference every other variant is compared with."""
        return self.name == "base"


@dataclass
class PlannedRun:
    """One (variant, seed) run: its resolved recipe, directory and reproducing overrides."""

    variant: Variant
    seed: int
    recipe: Recipe
    run_dir: Path
    overrides: list[str]
    recipe_sha256: str = ""   # of the recipe as planned (the runner may fill in defaults)


@dataclass
class AblationPlan:
    """Everything an ablation will run, resolved and validated."""

    recipe_ref: str
    recipe_path: str
    mode: str
    toggles: list[str]
    seeds: list[int]
    sets: list[str]
    tiny: bool
    out_dir: Path
    base_recipe_plugins: list[str]
    variants: list[Variant]
    runs: list[PlannedRun] = field(default_factory=list)

    def runs_of(self, variant: Variant) -> list[PlannedRun]:
        """The runs of one variant, in seed order."""
        return [r for r in self.runs if r.variant.name == variant.name]


# ------------------------------------------------------------------------------------------
# expansion
# ------------------------------------------------------------------------------------------


def parse_toggles(text: str | Sequence[str]) -> list[str]:
    """``"a,b,c"`` (or a list of such strings) -> ``["a", "b", "c"]``; refuses empty names and
    duplicates."""
    parts = [text] if isinstance(text, str) else list(text)
    names = [n.strip() for p in parts for n in p.split(",")]
    if not names or any(not n for n in names):
        raise AblationError(f"--toggle {','.join(parts)!r}: expected a comma-separated list of plugin names")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise AblationError(f"--toggle: plugin {dup[0]!r} is named twice")
    return names


def canonical_order(base_plugins: Sequence[str], toggles: Sequence[str]) -> list[str]:
    """The recipe's plugins, then the toggled plugins it does not list, in toggle order."""
    return list(base_plugins) + [t for t in toggles if t not in base_plugins]


def _slug(name: str) -> str:
    if name == "base":
        return "base"
    parts = re.findall(r"([+-])([^+]+)", name) if name[0] in "+-" else []
    words = [("plus_" if s == "+" else "minus_") + p for s, p in parts] or [name]
    return re.sub(r"[^A-Za-z0-9_.-]", "_", "_".join(words))


def _variant(name: str, order: Sequence[str], toggles: Sequence[str], on: Iterable[str]) -> Variant:
    on = set(on)
    plugins = [p for p in order if p not in toggles or p in on]
    return Variant(name=name, slug=_slug(name), plugins=plugins, toggled_on=[p for p in order if p in on])


def expand_variants(base_plugins: Sequence[str], toggles: Sequence[str], mode: str) -> list[Variant]:
    """The variants of an ablation, base first (see the module docstring for the modes)."""
    if mode not in MODES:
        raise AblationError(f"--mode {mode!r}: expected one of {', '.join(MODES)}")
    toggles = list(toggles)
    if not toggles:
        raise AblationError("--toggle: name at least one plugin")
    order = canonical_order(base_plugins, toggles)
    canon_toggles = [p for p in order if p in toggles]
    if mode == "one-at-a-time":
        return [_variant("base", order, toggles, [])] + [_variant("+" + t, order, toggles, [t]) for t in toggles]
    if mode == "leave-one-out":
        return [_variant("base", order, toggles, toggles)] + [
            _variant("-" + t, order, toggles, [x for x in toggles if x != t]) for t in toggles
        ]
    out = [_variant("base", order, toggles, [])]
    for k in range(1, len(canon_toggles) + 1):
        for subset in itertools.combinations(canon_toggles, k):
            out.append(_variant("".join("+" + s for s in subset), order, toggles, subset))
    return out


def _toml_list(names: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(n) for n in names) + "]"


def variant_overrides(sets: Sequence[str], plugins: Sequence[str], seed: int) -> list[str]:
    """The ``--set`` list that turns the recipe into one run of a variant."""
    return [*sets, f"plugins={_toml_list(plugins)}", f"train.seed={seed}"]


def _default_validate(recipe: Recipe) -> None:
    from .plugins import activate

    activate(recipe)


def plan_ablation(
    recipe_ref: str | Path,
    toggles: Sequence[str],
    out_dir: str | Path,
    mode: str = "one-at-a-time",
    n_seeds: int = 1,
    sets: Sequence[str] = (),
    tiny: bool = False,
    validate: Optional[Validator] = None,
) -> AblationPlan:
    """Resolve and validate every run of an ablation; nothing is run or written.

    Raises the first GolfError met, prefixed with the variant it belongs to.
    """
    if n_seeds < 1:
        raise AblationError(f"--seeds {n_seeds}: need at least 1")
    validate = validate or _default_validate
    toggles = list(toggles)
    base = load_recipe(recipe_ref, overrides=list(sets), tiny=tiny)
    variants = expand_variants(base.plugins, toggles, mode)
    seeds = [base.train.seed + i for i in range(n_seeds)]
    out = Path(out_dir)
    plan = AblationPlan(
        recipe_ref=str(recipe_ref), recipe_path=str(base.source_path or recipe_ref), mode=mode,
        toggles=toggles, seeds=seeds, sets=list(sets), tiny=tiny, out_dir=out,
        base_recipe_plugins=list(base.plugins), variants=variants,
    )
    for v in variants:
        for s in seeds:
            ov = variant_overrides(sets, v.plugins, s)
            try:
                recipe = load_recipe(recipe_ref, overrides=ov, tiny=tiny)
                validate(recipe)
            except GolfError as e:
                raise type(e)(f"variant {v.name!r} (plugins {v.plugins}): {e}") from None
            plan.runs.append(PlannedRun(v, s, recipe, out / v.slug / f"seed{s}", ov, recipe.sha256()))
    return plan


def run_command(plan: AblationPlan, run: PlannedRun) -> str:
    """The ``golf run`` command line that repeats one run of the plan."""
    parts = ["golf", "run", plan.recipe_path]
    for o in run.overrides:
        parts += ["--set", o]
    if plan.tiny:
        parts.append("--tiny")
    parts += ["--out", str(run.run_dir)]
    return " ".join(shlex.quote(p) for p in parts)


# ------------------------------------------------------------------------------------------
# running
# ------------------------------------------------------------------------------------------


def read_complete_result(run_dir: Path) -> Optional[dict]:
    """The run's result.json when it is complete (parses, holds a finite val_bpb and the
    plugin list), else ``None``."""
    try:
        data = json.loads((Path(run_dir) / "result.json").read_text())
    except (OSError, ValueError):
        return None
    return complete_result(data)


def complete_result(data: Any) -> Optional[dict]:
    """``data`` when it is a complete result dict (a finite val_bpb and the plugin list),
    else ``None``."""
    if not isinstance(data, dict) or any(k not in data for k in REQUIRED_RESULT_KEYS):
        return None
    v = data.get("val_bpb")
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
        return None
    return data


def _check_matches(run: PlannedRun, result: dict) -> None:
    """A complete result from an earlier invocation must be the run this plan wants."""
    got = list(result.get("plugins") or [])
    if got != run.variant.plugins:
        raise AblationError(
            f"{run.run_dir / 'result.json'} was made with plugins {got}, this ablation wants "
            f"{run.variant.plugins}; use a fresh --out"
        )
    seed = result.get("seed")
    if seed is not None and seed != run.seed:
        raise AblationError(f"{run.run_dir / 'result.json'} has seed {seed}, this ablation wants {run.seed}; use a fresh --out")


def default_runner(recipe: Recipe, run_dir: Path, echo: bool = False) -> dict:
    """Run one recipe into ``run_dir`` exactly as ``golf run`` does (``golf_core.run.
    run_recipe``); its log lines go to the run's train.log, and to the terminal with ``echo``."""
    from .run import run_recipe

    return run_recipe(recipe, run_dir, echo=echo)


def _fmt_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def run_ablation(
    plan: AblationPlan,
    runner: Optional[Runner] = None,
    log: Optional[Callable[[str], None]] = None,
    report: bool = True,
) -> dict:
    """Run (or resume) every run of ``plan`` in order and write OUT/ablation.json, then the
    report files. Returns the ablation summary (the content of ablation.json)."""
    runner = runner or default_runner
    main = _is_main_process()
    if log is None:
        log = (lambda m: print(m, file=sys.stderr, flush=True)) if main else (lambda m: None)
    out = plan.out_dir
    out.mkdir(parents=True, exist_ok=True)
    _check_previous_plan(plan)

    results: dict[tuple[str, int], dict] = {}
    walls: dict[tuple[str, int], float] = {}
    skipped: set[tuple[str, int]] = set()
    total = len(plan.runs)
    n_var = len(plan.variants)
    t_start = time.monotonic()
    executed_time = 0.0
    executed = 0
    for i, run in enumerate(plan.runs, 1):
        key = (run.variant.name, run.seed)
        vi = plan.variants.index(run.variant) + 1
        si = plan.seeds.index(run.seed) + 1
        where = f"[ablate] run {i}/{total} · variant {vi}/{n_var} {run.variant.name} · seed {si}/{len(plan.seeds)} ({run.seed})"
        done = read_complete_result(run.run_dir)
        if done is not None:
            _check_matches(run, done)
            results[key] = done
            skipped.add(key)
            log(f"{where}: already complete (val_bpb {done['val_bpb']:.4f}), skipped")
            continue
        if run.run_dir.exists() and main:
            aside = run.run_dir.with_name(run.run_dir.name + ".incomplete")
            if aside.exists():
                shutil.rmtree(aside)
            run.run_dir.rename(aside)
            log(f"{where}: incomplete earlier attempt moved to {aside}")
        run.run_dir.parent.mkdir(parents=True, exist_ok=True)
        left = sum(1 for r in plan.runs[i - 1:] if read_complete_result(r.run_dir) is None)
        eta = executed_time / executed * left if executed else math.nan
        log(f"{where}: running -> {run.run_dir} · elapsed {_fmt_duration(time.monotonic() - t_start)}"
            f" · eta {_fmt_duration(eta)}")
        t0 = time.monotonic()
        result = runner(run.recipe.model_copy(deep=True), run.run_dir)
        wall = time.monotonic() - t0
        done = read_complete_result(run.run_dir)
        if done is None:
            if complete_result(result) is None:
                raise AblationError(f"{run.run_dir}: the run finished without a complete result.json")
            if main:
                _write_json(run.run_dir / "result.json", result)
            done = result
        results[key] = done
        walls[key] = wall
        executed += 1
        executed_time += wall
        remaining = sum(1 for r in plan.runs[i:] if read_complete_result(r.run_dir) is None)
        eta = executed_time / executed * remaining
        log(
            f"{where}: val_bpb {done['val_bpb']:.4f} in {_fmt_duration(wall)} · "
            f"elapsed {_fmt_duration(time.monotonic() - t_start)} · "
            f"{remaining} run(s) left, eta {_fmt_duration(eta)}"
        )
        if main:
            _write_json(out / "ablation.json", summarize(plan, results, walls, skipped, complete=False))

    summary = summarize(plan, results, walls, skipped, complete=True)
    if main:
        _write_json(out / "ablation.json", summary)
        if report:
            from .ablate_report import write_report

            write_report(summary, out)
    log(f"[ablate] done: {total} run(s), {len(skipped)} reused, in {_fmt_duration(time.monotonic() - t_start)}; "
        f"see {out / 'ablation.md'}")
    return summary


def _check_previous_plan(plan: AblationPlan) -> None:
    """Refuse to mix two different ablations in one output folder."""
    path = plan.out_dir / "ablation.json"
    if not path.exists():
        return
    try:
        prev = json.loads(path.read_text())
    except ValueError:
        return
    prev_runs = {(r.get("variant"), r.get("seed")): r.get("recipe_sha256") for r in prev.get("runs", [])}
    for run in plan.runs:
        key = (run.variant.name, run.seed)
        if key in prev_runs and prev_runs[key] not in (None, run.recipe_sha256):
            raise AblationError(
                f"{path}: run {run.variant.name} seed {run.seed} was planned with another recipe "
                f"(different --set, --tiny or recipe file); use a fresh --out"
            )


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_jsonable(data), indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)


def _jsonable(x: Any) -> Any:
    """NaN and infinities become null (JSON has neither); numpy/torch scalars become Python
    numbers and paths strings."""
    if hasattr(x, "item") and callable(x.item) and not isinstance(x, (dict, list, tuple, str)):
        try:
            x = x.item()
        except (ValueError, RuntimeError):
            pass
    if isinstance(x, Path):
        return str(x)
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


# ------------------------------------------------------------------------------------------
# aggregation
# ------------------------------------------------------------------------------------------


def _num(x: Any) -> Optional[float]:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x)


def _mean_of(rows: Sequence[dict], key: str) -> Optional[float]:
    vals = [_num(r.get(key)) for r in rows]
    vals = [v for v in vals if v is not None]
    return stats.mean(vals) if vals else None


def summarize(
    plan: AblationPlan,
    results: dict[tuple[str, int], dict],
    walls: Optional[dict[tuple[str, int], float]] = None,
    skipped: Iterable[tuple[str, int]] = (),
    complete: bool = True,
) -> dict:
    """Aggregate per-run results into the ablation summary (the content of ablation.json).

    Per variant: plugins, per-seed val_bpb, mean, std, delta against the base (variant - base,
    negative is better) in bpb and nats/token, Welch's t (sign of the delta) with its two-sided
    p, the one-sided Welch test against the challenge's margin (``p_bar``), ``passes_bar``,
    artifact bytes, train and eval seconds. ``t_paired``/``p_paired``: a paired t test on the
    per-seed differences (variant and base share seeds, hence data order and initialization),
    often far more sensitive than Welch's; informative only, the bar uses Welch.
    """
    runs_out = _run_rows(plan, results, walls or {}, set(skipped))
    by_var = {v.name: [row for row in runs_out if row["variant"] == v.name and "val_bpb" in row] for v in plan.variants}
    base_rows = by_var["base"]
    tok = _mean_of(base_rows, "val_tokens")
    byt = _mean_of(base_rows, "val_bytes")
    margin_bpb = stats.bar_margin_bpb(tok, byt) if tok and byt else None
    variants_out = [_variant_entry(v, by_var[v.name], base_rows, tok, byt, margin_bpb) for v in plan.variants]

    return {
        "schema": SCHEMA_VERSION,
        "complete": complete and all(row["status"] != "pending" for row in runs_out),
        "recipe": plan.recipe_path,
        "mode": plan.mode,
        "toggles": plan.toggles,
        "seeds": plan.seeds,
        "sets": plan.sets,
        "tiny": plan.tiny,
        "recipe_plugins": plan.base_recipe_plugins,
        "bar": {
            "nats_per_token": stats.BAR_NATS,
            "p": stats.BAR_P,
            "margin_bpb": margin_bpb,
            "val_tokens": tok,
            "val_bytes": byt,
            "test": "one-sided Welch t test, H1: mean(base) - mean(variant) > margin_bpb",
            "conversion": "nats/token = bpb * ln2 * val_bytes / val_tokens (the base runs' counts)",
        },
        "variants": variants_out,
        "runs": runs_out,
    }


def _run_rows(plan: AblationPlan, results: dict[tuple[str, int], dict], walls: dict[tuple[str, int], float],
              skipped: set[tuple[str, int]]) -> list[dict[str, Any]]:
    """One row per planned run: identity, status and the figures of its result."""
    rows = []
    for r in plan.runs:
        res = results.get((r.variant.name, r.seed))
        row: dict[str, Any] = {
            "variant": r.variant.name, "seed": r.seed, "run_dir": str(r.run_dir),
            "recipe_sha256": r.recipe_sha256, "command": run_command(plan, r),
            "status": "reused" if (r.variant.name, r.seed) in skipped else ("done" if res is not None else "pending"),
        }
        if res is not None:
            for k in ("val_bpb", "val_loss", "pre_quant_val_bpb", "steps", "train_seconds", "eval_seconds",
                      "artifact_bytes", "model_bytes", "code_bytes", "under_cap", "val_tokens", "val_bytes"):
                if k in res:
                    row[k] = res[k]
            if (r.variant.name, r.seed) in walls:
                row["wall_seconds"] = walls[(r.variant.name, r.seed)]
        rows.append(row)
    return rows


def _variant_entry(v: Variant, rows: list[dict[str, Any]], base_rows: list[dict[str, Any]], tok: Optional[float],
                   byt: Optional[float], margin_bpb: Optional[float]) -> dict[str, Any]:
    """One variant's summary: scores, delta against the base, the tests, bytes and clocks."""
    base_vals = [float(r["val_bpb"]) for r in base_rows]
    nats_per_bpb = math.log(2.0) * byt / tok if tok and byt else None
    vals = [float(r["val_bpb"]) for r in rows]
    m = stats.mean(vals) if vals else math.nan
    entry: dict[str, Any] = {
        "name": v.name, "slug": v.slug, "plugins": v.plugins, "toggled_on": v.toggled_on,
        "seeds": [r["seed"] for r in rows], "val_bpb": vals, "n": len(vals),
        "mean": m, "std": stats.std(vals),
    }
    v_tok, v_byt = _mean_of(rows, "val_tokens"), _mean_of(rows, "val_bytes")
    entry["tokens_per_byte"] = v_tok / v_byt if v_tok and v_byt else None
    if base_vals and vals:
        delta = m - stats.mean(base_vals)
        entry["delta_bpb"] = delta
        entry["delta_nats"] = delta * nats_per_bpb if nats_per_bpb is not None else None
    else:
        entry["delta_bpb"] = entry["delta_nats"] = None
    if v.is_base or not vals:
        entry.update(se_bpb=None, t=None, df=None, p=None, t_paired=None, p_paired=None,
                     t_bar=None, p_bar=None, passes_bar=None)
    else:
        entry.update(_tests_against_base(rows, base_rows, margin_bpb))
    art = [int(r["artifact_bytes"]) for r in rows if _num(r.get("artifact_bytes")) is not None]
    entry["artifact_bytes"] = max(art) if art else None
    entry["artifact_bytes_per_seed"] = art
    entry["under_cap"] = all(bool(r.get("under_cap", True)) for r in rows) if rows else None
    entry["train_seconds"] = _mean_of(rows, "train_seconds")
    entry["eval_seconds"] = _mean_of(rows, "eval_seconds")
    entry["run_dirs"] = [r["run_dir"] for r in rows]
    return entry


def _tests_against_base(rows: list[dict[str, Any]], base_rows: list[dict[str, Any]],
                        margin_bpb: Optional[float]) -> dict[str, Any]:
    """Welch's t against the base, the paired t on shared seeds, and the one-sided bar test."""
    vals = [float(r["val_bpb"]) for r in rows]
    base_vals = [float(r["val_bpb"]) for r in base_rows]
    two = stats.welch(vals, base_vals)             # t has the sign of the delta
    out: dict[str, Any] = dict(se_bpb=two.se, t=two.t, df=two.df, p=two.p_two_sided)
    # the same seeds in base and variant: a paired test on the per-seed differences
    base_by_seed = {r["seed"]: float(r["val_bpb"]) for r in base_rows}
    pairs = [(float(r["val_bpb"]), base_by_seed[r["seed"]]) for r in rows if r["seed"] in base_by_seed]
    pt = stats.paired([x for x, _ in pairs], [y for _, y in pairs])
    out.update(t_paired=pt.t, p_paired=pt.p_two_sided)
    if margin_bpb is not None:
        bar = stats.welch(base_vals, vals, margin=margin_bpb)  # H1: improvement > margin
        out.update(t_bar=bar.t, p_bar=bar.p_greater,
                   passes_bar=bool(math.isfinite(bar.p_greater) and bar.p_greater < stats.BAR_P))
    else:
        out.update(t_bar=None, p_bar=None, passes_bar=None)
    return out
