"""``golf check`` end to end: the audit is the run.

* ``check_recipe(recipe, out)``: trains the recipe once in this process (the audit hook on file
  opens active from the start), keeps the weights as training left them and the plugins' stash,
  then runs everything after training in fresh audit processes (``golf_core.check.worker``),
  each run on its own data folder on disk: the reported run (its ``artifact.bin``,
  ``result.json`` and ``eval_ledger.jsonl`` are copied into ``out``), a repeat of it, a base
  at a second batch geometry, and one run per flip-test cut with the cut's tokens changed in
  the validation shards on disk. Runs are shuffled over the processes, so the reported run is
  one among them, indistinguishable from a probe.
* ``check_run_dir(run_dir)``: the same from a finished run directory: with a checkpoint of
  its last step, from the trained weights (every phase after training re-runs); otherwise from
  ``artifact.bin`` (decode and scoring only; what ran before is judged from ``result.json``).

Then the facts are gathered and every rule decided (``golf_core.check.audit``), and
``compliance.json`` is written.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from .. import rundir
from ..context import RunContext
from ..errors import GolfError
from ..recipe import Recipe
from .audit import Facts, decide
from .flip import CAP, FLOOR, SAFETY, FlipReport, Outcome, compare, per_target_tolerance, permuted
from .ledger import LedgerAudit, audit_ledger
from .opens import Recorder
from .overlap import doc_of_target, document_overlap
from .probes import Cut, boundaries, flip_tokens, in_order, order_cut, plan_cuts, without_bos
from .report import CheckReport
from .session import NormStats, Violation

#: What ``golf check --tiny`` adds to ``--tiny`` (short training, a 4,096-target stream).
TINY_CHECK_OVERRIDES = ("train.iterations=6", "train.warmup_steps=1", "train.warmdown_iters=2",
                        "eval.max_tokens=4097")
#: The challenge's world size: the real windows-per-batch and rank boundaries are computed for it.
CHALLENGE_WORLD = 8


@dataclass
class CheckOptions:
    """How thorough the check is.

    cuts / cuts_b: eval-time flip-test runs (decode + scoring of the reported run's artifact) at
    the recipe's real windows-per-batch / at the second batch geometry; whole_cuts: flip-test runs
    of every phase after training, flips spread over the whole stream; flips: flipped positions per cut; safety, floor, cap: the per-target tolerance;
    seed: cut, flip and order randomness (None: a fresh one, recorded in compliance.json);
    workers: audit processes at a time; threads: torch threads per process; echo: progress.
    """

    cuts: int = 8
    cuts_b: int = 2
    whole_cuts: int = 2
    flips: int = 48
    safety: float = SAFETY
    floor: float = FLOOR
    cap: float = CAP
    seed: Optional[int] = None
    workers: int = 2
    threads: int = 1
    echo: bool = True


def _say(ctx: RunContext, opts: CheckOptions, msg: str) -> None:
    if opts.echo and ctx.is_main:
        print(msg, flush=True)


def _hardware(ctx: RunContext) -> str:
    if ctx.device.type == "cuda":
        return torch.cuda.get_device_name(ctx.device)
    return ctx.device.type


def _plugin_refs(ctx: RunContext, reg: Any) -> list[list[str]]:
    """Import references of the active plugins registered in this process (not entry points)."""
    import types

    from ..plugins import registry

    reg = reg or registry()
    out = []
    for name in ctx.recipe.plugins:
        try:
            entry = reg.get(name)
        except Exception:  # noqa: BLE001 - unknown here: the worker's discovery will say
            continue
        if entry.dist != "(in-process)":
            continue
        obj = entry.module
        ref = obj.__name__ if isinstance(obj, types.ModuleType) else f"{type(obj).__module__}:{type(obj).__qualname__}"
        out.append([name, ref, entry.version or "0"])
    return out


def _windows_per_batch(recipe: Recipe) -> int:
    """Eval windows per batch on one rank of the challenge's hardware, for the recipe at full size
    (the tiny sizes shrink the batch; the audit uses the real count)."""
    from ..eval.session import eval_batch_seqs
    from ..recipe import load_recipe
    from ..train.loop import grad_accum_steps

    full = recipe
    if recipe.tiny and recipe.source_path:
        try:
            full = load_recipe(recipe.source_path)
        except GolfError:
            full = recipe
    return eval_batch_seqs(full.eval.batch_tokens, full.eval.seq_len, CHALLENGE_WORLD,
                           grad_accum_steps(full.train, CHALLENGE_WORLD))


def _batch_tokens(recipe: Recipe, wpb: int) -> int:
    """``[eval] batch_tokens`` that gives ``wpb`` windows per batch in a one-process run."""
    from ..train.loop import grad_accum_steps

    return int(wpb) * recipe.eval.seq_len * grad_accum_steps(recipe.train, 1)


class _Runs:
    """The audit runs of one check: data folders, jobs, processes, outcomes."""

    def __init__(self, ctx: RunContext, raw: dict[str, Any], tiny: bool, work: Path, opts: CheckOptions,
                 reg: Any, trained: Optional[Path], artifact: Optional[Path]):
        from ..data.validation import load_validation_tokens

        self.ctx, self.raw, self.tiny, self.work, self.opts = ctx, raw, tiny, work, opts
        self.trained, self.artifact = trained, artifact
        self.post_stash: Optional[Path] = None
        self.data = ctx.data
        ev = ctx.recipe.eval
        self.stream = load_validation_tokens(self.data.val_files, ev.seq_len, max_tokens=ev.max_tokens).numpy()
        self.n = int(self.stream.shape[0]) - 1
        self.refs = _plugin_refs(ctx, reg)
        self.count = 0
        self.seconds: dict[str, float] = {}

    def new_run(self, rid: str, batch_tokens: int, flips: dict[int, int], mode: str) -> dict[str, Any]:
        """A run spec with its data folder written."""
        from .disk import write_data_dir

        self.count += 1
        d = self.work / f"d{self.count:03d}"
        ds = write_data_dir(d, self.data, flips)
        return {"id": rid, "data_dir": str(ds), "out_dir": str(self.work / f"r{self.count:03d}"),
                "batch_tokens": int(batch_tokens), "mode": mode}

    def execute(self, runs: list[dict[str, Any]], watch: list[int], rng: random.Random) -> dict[str, Outcome]:
        """Shuffle ``runs`` over ``opts.workers`` fresh processes, run them, load the outcomes."""
        runs = list(runs)
        rng.shuffle(runs)
        k = max(1, min(self.opts.workers, len(runs)))
        groups = [runs[i::k] for i in range(k)]
        procs = []
        for g, group in enumerate(groups):
            job = {"recipe": self.raw, "tiny": self.tiny, "trained": str(self.trained) if self.trained else None,
                   "artifact": str(self.artifact) if self.artifact else None, "plugins": self.refs,
                   "post_stash": str(self.post_stash) if self.post_stash else None,
                   "sys_path": [p for p in sys.path if p], "watch": watch, "runs": group,
                   "tokenizer_path": str(self.data.tokenizer_path), "threads": self.opts.threads,
                   "val_names": [Path(f).name for f in self.data.val_files],
                   "train_names": [Path(f).name for f in self.data.train_files]}
            path = self.work / f"job{self.count:03d}_{g}.json"
            path.write_text(json.dumps(job))
            log = open(self.work / f"{path.stem}.log", "w")
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([p for p in sys.path if p]))
            procs.append((subprocess.Popen([sys.executable, "-m", "golf_core.check.worker", str(path)],
                                           stdout=log, stderr=subprocess.STDOUT, env=env), log, path))
        for p, log, path in procs:
            rc = p.wait()
            log.close()
            if rc != 0:
                tail = (self.work / f"{path.stem}.log").read_text()[-2000:]
                raise GolfError(f"golf check: an audit process failed (exit {rc}):\n{tail}")
        return {r["id"]: _load_outcome(Path(r["out_dir"])) for r in runs}


def _load_outcome(out: Path) -> Outcome:
    info = json.loads((out / "outcome.json").read_text())
    if info.get("error"):
        return Outcome(nll=np.zeros(0), coverage=np.zeros(0, dtype=np.int64), aborted=f"run failed: {info['error']}",
                       info=info)
    with np.load(out / "outcome.npz") as z:
        nll, cov, ids, arr = z["nll"], z["coverage"], z["row_ids"], z["rows"]
    rows = {int(k): arr[i] for i, k in enumerate(ids)}
    info["out_dir"] = str(out)
    return Outcome(nll=nll, coverage=cov, rows=rows, aborted=info.get("aborted"), info=info)


def _watch_set(bounds: dict[str, list[int]], n: int, rng: np.random.Generator, extra: int = 64) -> list[int]:
    """Target indices whose full rows every run keeps: every boundary (with edges) and a sample."""
    pos = set()
    for k, v in bounds.items():
        if k in ("late", "random"):
            continue
        for p in v:
            pos.update((p - 1, p, p + 1))
    pos.update(int(x) for x in rng.integers(1, n + 1, size=extra))
    return sorted(t - 1 for t in pos if 1 <= t <= n)


def _audit(ctx: RunContext, raw: dict[str, Any], tiny: bool, out: Path, opts: CheckOptions, reg: Any, *,
           trained: Optional[Path], artifact: Optional[Path], facts: Facts,
           write_run_files: bool = True) -> tuple[Facts, Outcome, FlipReport]:
    """Every audit run and the facts they give (see the module docstring)."""
    from ..eval.windows import WindowSchedule

    recipe = ctx.recipe
    seed = opts.seed if opts.seed is not None else random.SystemRandom().randrange(2**31)
    rng_py, rng = random.Random(seed), np.random.default_rng(seed)
    work = Path(tempfile.mkdtemp(prefix="golf-check-"))
    try:
        R = _Runs(ctx, raw, tiny, work, opts, reg, trained, artifact)
        n = R.n
        ev = recipe.eval
        sched = WindowSchedule(n, ev.seq_len, ev.stride)
        lo, hi = sched.score_lo(), sched.score_hi()
        wpb_a = _windows_per_batch(recipe)
        wpb_b = 3 if wpb_a != 3 else 5
        geo = {"A": wpb_a, "B": wpb_b}
        bt = {g: _batch_tokens(recipe, w) for g, w in geo.items()}
        bos = int(R.data.load_tokenizer().bos_id())
        bos_pos = np.flatnonzero(R.stream == bos).tolist() if bos >= 0 else []
        bounds = boundaries(n, lo, hi, geo.values(), (), [p for p in bos_pos if p > 0])
        V = recipe.data.vocab_size
        whole = trained is not None
        # every cut is planned before any run (the chunk cuts among the watched boundaries), so every
        # run keeps the same rows: a run cannot tell from its session what it is
        first = plan_cuts(n, {"random": bounds["random"]}, ["A"], [opts.whole_cuts], opts.flips * 2, seed + 3)
        if first:   # the first whole-pipeline run flips from the stream's start: the artifact must not move
            c0 = first[0]
            first[0] = Cut(1, "stream-start", "A", tuple(sorted({1, 2, 3} | set(c0.flips))))
        # whole-pipeline flips keep the document structure (no BOS flipped or made): an eval in a
        # declared document order is judged in that order, which the BOS tokens define
        first = [without_bos(c, R.stream, bos) for c in first]
        cuts = plan_cuts(n, bounds, ["A", "B"], [opts.cuts, opts.cuts_b], opts.flips, seed)
        watch = sorted(set(_watch_set(bounds, n, rng)) | {c.j - 1 for c in first + cuts})
        _say(ctx, opts, f"check: audit runs on {n:,} targets, {wpb_a} and {wpb_b} windows per batch, seed {seed}")
        # stage 1, every phase after training: the reported run, its repeat, and whole-pipeline
        # cuts whose flips spread over the whole stream (the artifact must not change)
        cut_of: dict[str, Cut] = {}
        specs = [R.new_run("report", bt["A"], {}, "whole" if whole else "eval"),
                 R.new_run("repeat", bt["A"], {}, "whole" if whole else "eval")]
        for i, c in enumerate(first):
            cut_of[f"whole{i}"] = c
            specs.append(R.new_run(f"whole{i}", bt["A"], flip_tokens(R.stream, c.flips, V, seed + 500 + i, bos),
                                   "whole" if whole else "eval"))
        t0 = time.time()
        outs = R.execute(specs, watch, rng_py)
        report = outs["report"]
        # stage 2, eval time on the reported run's artifact: the base of geometry B and the cuts,
        # those at the chunk boundaries of the reported run's updates included
        rdir = Path(report.info["out_dir"]) if "out_dir" in report.info else None
        if rdir is not None and (rdir / rundir.ARTIFACT).is_file():
            R.artifact = rdir / rundir.ARTIFACT
            R.post_stash = rdir / "post_stash.pt" if (rdir / "post_stash.pt").is_file() else None
        updates = [e["targets"] for e in report.info.get("ledger", []) if e.get("event") == "update"]
        if updates:
            wset = set(watch)
            chunk = [p for p in boundaries(n, lo, hi, (), updates, ())["chunk"] if p - 1 in wset]
            if chunk:
                cuts += plan_cuts(n, {**bounds, "chunk": chunk, "document": [], "batch": [], "window": [], "rank": [],
                                      "late": [], "random": []}, ["A"], [max(2, opts.cuts // 3)], opts.flips, seed + 11)
        specs2 = [R.new_run("base-B", bt["B"], {}, "eval")]
        perm, inv = _declared_order(report, n)
        for i, c in enumerate(cuts):
            if perm is not None:      # judged in the adapter's declared document order
                c, at = order_cut(c, perm, inv, R.stream, bos, np.random.default_rng(seed + 700 + i))
            else:
                at = list(c.flips)
            cut_of[f"cut{i}"] = c
            specs2.append(R.new_run(f"cut{i}", bt[c.geometry], flip_tokens(R.stream, at, V, seed + i, bos), "eval"))
        if perm is not None:
            for rid in [r for r in cut_of if r.startswith("whole")]:
                cut_of[rid] = in_order(cut_of[rid], inv)
        if R.artifact is not None:
            outs.update(R.execute(specs2, watch, rng_py))
        else:
            cut_of = {k: v for k, v in cut_of.items() if k in outs}
        audit_seconds = time.time() - t0
        # -- the reported run's files ---------------------------------------------------------
        if rdir is not None and ctx.is_main and write_run_files:
            for name in (rundir.ARTIFACT,):
                if (rdir / name).is_file():
                    shutil.copyfile(rdir / name, out / name)
            with open(out / "eval_ledger.jsonl", "w", encoding="utf-8") as fh:
                for e in report.info.get("ledger", []):
                    fh.write(json.dumps(e) + "\n")
        # -- facts ----------------------------------------------------------------------------
        tol = per_target_tolerance(report.nll, outs["repeat"].nll, opts.safety, opts.floor, opts.cap) \
            if report.nll.size and outs["repeat"].nll.size == report.nll.size else np.full(n, opts.cap)
        doc_map = doc_of_target(R.stream, bos) if recipe.check.document_independent and bos >= 0 else None
        rep = FlipReport(num_targets=n, seed=seed, geometries=geo,
                         tolerance={"safety": opts.safety, "floor": opts.floor, "cap": opts.cap,
                                    "min": float(tol.min()) if tol.size else None,
                                    "median": float(np.median(tol)) if tol.size else None,
                                    "max": float(tol.max()) if tol.size else None,
                                    "at_cap": int((tol >= opts.cap).sum())})
        bases = {"A": report, "B": outs.get("base-B", report)}
        if perm is not None:
            bases = {g: permuted(b, perm, inv) for g, b in bases.items()}
            tol = tol[perm]
            doc_map = doc_map[perm] if doc_map is not None else None
            rep.note = "judged in the adapter's declared document order; no flip touches or makes a BOS token"
        for rid, c in cut_of.items():
            o, b = outs[rid], bases[c.geometry]
            if perm is not None:
                o = permuted(o, perm, inv)
            if b.nll.size != n or o.nll.size != n:
                from .flip import ProbeResult

                rep.probes.append(ProbeResult(c, aborted=o.aborted or b.aborted or "run failed"))
                continue
            rep.probes.append(compare(b, o, c, tol, doc_map))
        facts.flip = rep
        facts.audit_seconds = audit_seconds
        facts.runs = {rid: _run_summary(o) for rid, o in outs.items()}
        facts.reproduce = _reproduction(report, outs, opts.cap)
        facts.adapter = report.info.get("adapter")
        norm = NormStats()
        for o in outs.values():
            if "norm" in o.info:
                norm = norm.merge(NormStats(**o.info["norm"]))
            facts.violations += [Violation(k, m) for k, m in o.info.get("violations", [])]
            for r in o.info.get("reads", []):
                facts.reads.append({**r, "run": o.info.get("id")})
            facts.unrecorded_loads += o.info.get("unrecorded_loads", [])
            facts.opens += [{**e, "run": o.info.get("id")} for e in o.info.get("opens", [])]
        facts.norm = norm
        facts.norm_report_rows = int(report.info.get("norm", {}).get("rows_checked", 0))
        facts.coverage = report.coverage if report.coverage.size else None
        facts.ledgers.append(("the reported run", audit_ledger(report.info.get("ledger", []))))
        bad = [(rid, a) for rid, a in ((rid, audit_ledger(o.info.get("ledger", []))) for rid, o in outs.items()
                                       if rid != "report") if not a.ok]
        if bad:
            facts.ledgers.append((f"audit run {bad[0][0]}", bad[0][1]))
        if perm is not None:     # the order may depend on the document structure only, which no flip changes
            ref = _order_event(report)
            moved = sorted(rid for rid, o in outs.items() if o.info.get("ledger") is not None and _order_event(o) != ref)
            if moved:
                facts.ledgers.append(("the declared order", LedgerAudit(problems=[
                    f"audit run {moved[0]} declared another document order than the reported run: the order "
                    f"must follow from the document structure alone"])))
        facts.eval_seconds = report.info.get("eval_seconds")
        facts.post_train_seconds = report.info.get("artifact_seconds")
        facts.model_bytes = report.info.get("model_bytes")
        facts.document_independent = bool(recipe.check.document_independent)
        facts.exempt = dict(recipe.check.exempt)
        if report.aborted:
            facts.flip_skipped = f"the reported run aborted: {report.aborted}"
        return facts, report, rep
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _order_event(o: Outcome) -> Optional[dict[str, Any]]:
    return next((e for e in o.info.get("ledger", []) if e.get("event") == "order"), None)


def _declared_order(report: Outcome, n: int) -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """``(perm, inv)`` of the document order the reported run declared (None, None without one):
    ``perm[e]`` is the ``e``-th target evaluated, ``inv[t]`` the evaluation position of target ``t``."""
    ev = _order_event(report)
    if ev is None:
        return None, None
    parts = [np.arange(int(lo), int(hi), dtype=np.int64) for g in ev.get("groups", []) for lo, hi in g]
    perm = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if perm.shape[0] != n or not np.array_equal(np.sort(perm), np.arange(n)):
        raise GolfError(f"golf check: the declared document order covers {perm.shape[0]} of {n} targets")
    inv = np.empty(n, dtype=np.int64)
    inv[perm] = np.arange(n)
    return perm, inv


def _run_summary(o: Outcome) -> dict[str, Any]:
    i = o.info
    return {"seconds": i.get("seconds"), "batch_seqs": i.get("batch_seqs"), "aborted": o.aborted,
            "payload_sha256": i.get("payload_sha256"), "rows_checked": (i.get("norm") or {}).get("rows_checked"),
            "val_bpb": (i.get("result") or {}).get("val_bpb")}


def _reproduction(report: Outcome, outs: dict[str, Outcome], cap: float) -> dict[str, Any]:
    """Does the repeat reproduce the reported run on every target, and is the artifact the same in
    every run (the flipped ones included)?"""
    rep = outs["repeat"]
    d: dict[str, Any] = {"cap": cap}
    if report.nll.size and rep.nll.size == report.nll.size:
        fa, fb = np.isfinite(report.nll), np.isfinite(rep.nll)
        diff = np.where(fa & fb, np.abs(report.nll - rep.nll), np.where(fa == fb, 0.0, np.inf))
        d.update(max_diff=float(diff.max()) if diff.size else 0.0, over_cap=int((diff > cap).sum()),
                 first_over=int(np.argmax(diff > cap)) + 1 if (diff > cap).any() else None)
    else:
        d.update(max_diff=None, over_cap=None, error=rep.aborted or report.aborted)
    shas = {rid: o.info.get("payload_sha256") for rid, o in outs.items()
            if o.info.get("payload_sha256") and o.info.get("mode") == "whole"}
    base = shas.get("report")
    d["artifact_differs"] = sorted(rid for rid, s in shas.items() if s != base)
    d["artifacts"] = len(shas)
    d["failed_runs"] = sorted(rid for rid, o in outs.items() if o.info.get("error"))
    return d


# ---------------------------------------------------------------------------------------------
# RECIPE
# ---------------------------------------------------------------------------------------------


def _save_trained(path: Path, model: torch.nn.Module, ctx: RunContext, steps: int, train_seconds: float) -> list[str]:
    """Weights right after training and the stash, for the audit processes; returns the stash
    keys that could not be saved (kept out)."""
    import io

    state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    stash, dropped = {}, []
    for k, v in ctx.stash.items():
        try:
            torch.save(v, io.BytesIO())
            stash[k] = v
        except Exception:  # noqa: BLE001 - an unpicklable value (a file handle) cannot travel
            dropped.append(str(k))
    torch.save({"state": state, "stash": stash, "steps": steps, "train_seconds": train_seconds}, path)
    return dropped


def check_recipe(recipe: Recipe, out_dir: Path, opts: Optional[CheckOptions] = None, *, reg: Any = None) -> CheckReport:
    """Train ``recipe``, run it and its audit runs, decide every rule; write the run files and
    ``compliance.json`` into ``out_dir``."""
    from ..eval.bpb import EvalResult
    from ..run import Run

    opts = opts or CheckOptions()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    raw, tiny = recipe.to_dict(), recipe.tiny
    run = Run.from_recipe(recipe, out, reg=reg, echo=opts.echo)
    ctx = run.ctx
    rec = None
    try:
        run.setup()
        data = ctx.data
        rec = Recorder(frozenset(Path(f).name for f in data.val_files),
                       frozenset(Path(f).name for f in data.train_files), lambda: (ctx.phase, None)).start()
        run.data()
        run.build()
        _say(ctx, opts, f"check: training {recipe.source_path or 'recipe'} ({run.n_params:,} params)")
        tr = run.train(monitor=False)
        rec.stop()
        train_opens = list(rec.events)
        work = out / ".check"
        work.mkdir(exist_ok=True)
        dropped = _save_trained(work / "trained.pt", run.model, ctx, tr.steps, tr.train_seconds)
        run.model = None
        facts = Facts(tracks=ctx.plugins.legality(), vocab_size=recipe.data.vocab_size,
                      reads=[dict(r) for r in ctx.validation_reads], opens=[{**e, "run": "training"} for e in train_opens],
                      train_seconds=tr.train_seconds, device=_hardware(ctx), world_size=ctx.world_size,
                      train_limit_s=recipe.train.max_wallclock_seconds)
        facts, report, _ = _audit(ctx, raw, tiny, out, opts, reg, trained=work / "trained.pt", artifact=None,
                                  facts=facts)
        facts.stash_dropped = dropped
        _overlap(ctx, facts)
        import golf_core.progress  # noqa: F401 - as golf run counts it: once the run imported what it uses

        res = report.info.get("result") or {}
        tokens = float(res.get("tokens") or 0)
        run.final = EvalResult.from_sums(float(res.get("val_loss") or 0.0) * tokens, tokens,
                                         float(res.get("bytes") or 0), bool(res.get("coverage_ok")))
        run.sizes = {"model_bytes": facts.model_bytes or 0}
        run.eval_seconds = facts.eval_seconds
        result = run.result(reads=facts.reads, written_by="golf check", aborted=report.aborted).as_json()
        facts.code_bytes, facts.cap_bytes = result["code_bytes"], recipe.artifact.cap_bytes
        if ctx.is_main:
            rundir.write_json_atomic(out / rundir.RESULT, result)
        rep = CheckReport(target=str(recipe.source_path or "recipe"), mode="recipe", rules=decide(facts),
                          evidence=_evidence(facts, out, result))
        if ctx.is_main:
            rep.write(out)
        return rep
    finally:
        if rec is not None:
            rec.stop()
        shutil.rmtree(out / ".check", ignore_errors=True)
        run.close()


def _overlap(ctx: RunContext, facts: Facts) -> None:
    from ..data.shards import read_shard

    data = ctx.data
    facts.build_split = (data.manifest() or {}).get("split_check")
    bos = int(data.load_tokenizer().bos_id())
    if bos < 0:
        facts.overlap_skipped = "the tokenizer has no BOS id: documents cannot be told apart"
        return
    val = np.concatenate([np.asarray(read_shard(f)) for f in sorted(data.val_files, key=lambda p: Path(p).name)])
    facts.overlap = document_overlap(val, data.train_files, bos)
    if facts.overlap.val_docs == 0:
        facts.overlap_skipped = "no BOS in the validation stream: documents cannot be told apart"
        facts.overlap = None


# ---------------------------------------------------------------------------------------------
# RUN_DIR
# ---------------------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise GolfError(f"{path}: cannot read it ({e})") from None


def _final_checkpoint(run_dir: Path, steps: Optional[int]) -> Optional[Path]:
    from ..train.checkpoint import latest_checkpoint, read_meta

    ckpt = latest_checkpoint(run_dir)
    if ckpt is None or steps is None:
        return None
    return ckpt if int(read_meta(ckpt).get("step", -1)) == int(steps) else None


def check_run_dir(run_dir: Path, out_dir: Optional[Path] = None, opts: Optional[CheckOptions] = None, *,
                  reg: Any = None) -> CheckReport:
    """Check a finished run directory (see the module docstring); ``compliance.json`` goes to
    ``out_dir`` (default: the run directory)."""
    from ..run import Run, load_run_recipe

    opts = opts or CheckOptions()
    run_dir = Path(run_dir)
    for name in (rundir.RESOLVED, rundir.ARTIFACT, rundir.RESULT):
        if not (run_dir / name).is_file():
            raise GolfError(f"{run_dir}: no {name}; is it a finished golf run directory?")
    recipe = load_run_recipe(run_dir)
    raw = recipe.to_dict()
    result = _read_json(run_dir / rundir.RESULT)
    man = _read_json(run_dir / rundir.MANIFEST) if (run_dir / rundir.MANIFEST).is_file() else {}
    out = Path(out_dir) if out_dir is not None else run_dir
    work = Path(tempfile.mkdtemp(prefix="golf-check-w-"))
    run = Run.from_recipe(recipe, None, reg=reg, echo=False)
    ctx = run.ctx
    try:
        leg = result.get("legality", {}) or {}
        dev = man.get("device", {}) or {}
        facts = Facts(tracks=ctx.plugins.legality(), vocab_size=recipe.data.vocab_size,
                      reads=[r for r in (leg.get("validation_reads", []) or [])],
                      code_bytes=result.get("code_bytes"), cap_bytes=int(result.get("cap_bytes", recipe.artifact.cap_bytes)),
                      train_seconds=result.get("train_seconds"), device=dev.get("name") or dev.get("type", "?"),
                      world_size=int(man.get("world_size", result.get("world_size", 1)) or 1),
                      train_limit_s=recipe.train.max_wallclock_seconds)
        trained = None
        ckpt = _final_checkpoint(run_dir, result.get("steps"))
        if ckpt is not None:
            _say(ctx, opts, f"check: weights from the final checkpoint {ckpt}")
            run.setup()
            run.build()
            tr = run.train(resume=ckpt, checkpoint_dir=work / "ckpt", monitor=False)
            trained = work / "trained.pt"
            facts.stash_dropped = _save_trained(trained, run.model, ctx, tr.steps, tr.train_seconds)
            facts.reads = [r for r in facts.reads if r.get("phase") == "train"]
            run.model = None
        else:
            facts.scope_note = ("eval-time runs only (no trained weights in the run directory): what ran before "
                                "scoring is judged from result.json")
        facts, report, _ = _audit(ctx, raw, recipe.tiny, out, opts, reg, trained=trained,
                                  artifact=None if trained else (run_dir / rundir.ARTIFACT).resolve(), facts=facts,
                                  write_run_files=False)
        if trained is None:
            facts.model_bytes = result.get("model_bytes")
        _overlap(ctx, facts)
        rep = CheckReport(target=str(run_dir), mode="run directory", rules=decide(facts),
                          evidence=_evidence(facts, out, result))
        if ctx.is_main:
            rep.write(out)
        return rep
    finally:
        shutil.rmtree(work, ignore_errors=True)
        run.close()


def _evidence(f: Facts, out: Path, result: dict[str, Any]) -> dict[str, Any]:
    flip = None if f.flip is None else f.flip.as_dict()
    return {
        "flip": flip,
        "seed": None if f.flip is None else f.flip.seed,
        "probes": None if f.flip is None else f.flip.flips,
        "tolerance": None if f.flip is None else f.flip.tolerance,
        "rows_checked": {"reported_run": f.norm_report_rows, "all_runs": (f.norm.rows_checked if f.norm else 0)},
        "reproduction": f.reproduce,
        "runs": f.runs,
        "audit_seconds": f.audit_seconds,
        "overlap": None if f.overlap is None else f.overlap.as_dict(),
        "file_opens": [e for e in f.opens if not e.get("sanctioned")][:50],
        "hardware": {"device": f.device, "world_size": f.world_size},
        "clocks": {"train_seconds": f.train_seconds, "post_train_seconds": f.post_train_seconds,
                   "eval_seconds": f.eval_seconds},
        "bytes": {"code_bytes": f.code_bytes, "model_bytes": f.model_bytes, "cap_bytes": f.cap_bytes},
        "tracks": f.tracks,
        "validation_reads": f.reads,
        "stash_dropped": f.stash_dropped,
        "val_bpb": result.get("val_bpb"),
        "out_dir": str(out),
    }
