"""``golf check`` end to end: get trained weights, run the recipe, run the flip test and the
vocabulary sweep, gather the facts, decide every rule, write ``compliance.json``.

* ``check_recipe(recipe, out)``: trains the recipe once, keeps the weights as training left them
  (before any pre-quant transform) and the plugins' stash, then runs the post-training
  pipeline on the recipe's validation stream (the run itself: ``artifact.bin``, ``result.json``,
  ``eval_ledger.jsonl`` in ``out``) and again for the flip test on a truncated stream.
* ``check_run_dir(run_dir)``: reads ``resolved.toml``, ``artifact.bin`` and ``result.json``. When
  the run left a checkpoint of its last step, the weights come from it and the flip test covers
  the whole post-training pipeline; otherwise it covers the eval-time part (decode + adapter),
  and what ran before is judged from ``result.json`` (validation reads, declared tracks).

The flip test's probes reuse one artifact when the base run read no validation data before
scoring (the stream reaches plugins only through the check's ``StreamContext``, which records
every load, so such an artifact cannot depend on the stream); otherwise every probe re-runs the
whole pipeline. ``CheckOptions.reuse_artifact = False`` forces whole runs.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from .. import rundir
from ..context import RunContext
from ..errors import GolfError
from ..recipe import Recipe
from .audit import Facts, decide
from .flip import FLOOR, SAFETY, FlipReport, Outcome, run_flip
from .ledger import audit_ledgers
from .posttrain import PostTraining, Trained, snapshot_trained
from .probes import choose_probes
from .report import CheckReport
from .stream import StreamContext
from .sweep import SweepResult, vocab_sweep

#: What ``golf check --tiny`` adds to ``--tiny`` (short training, the flip stream as the whole set).
TINY_CHECK_OVERRIDES = ("train.iterations=6", "train.warmup_steps=1", "train.warmdown_iters=2",
                        "eval.max_tokens=4097")
#: Default flip stream: this many eval windows of targets ...
FLIP_WINDOWS = 8
#: ... or this many adaptation chunks when the run's adapter updates chunk by chunk.
FLIP_CHUNKS = 3


@dataclass
class CheckOptions:
    """How thorough the check is.

    probes: flip positions (besides the two base runs); flip_targets: targets in the flip stream
    (default ``FLIP_WINDOWS * [eval] seq_len``); safety / floor: the tolerance rule; seed: probe
    and flip-token randomness; reuse_artifact: see the module docstring; sweep: ``"off"``,
    ``"auto"`` (sweep when the logit tap cannot verify normalization) or ``"on"``: one eval run per
    token id, so opt-in; echo: print progress.
    """

    probes: int = 8
    flip_targets: Optional[int] = None
    safety: float = SAFETY
    floor: float = FLOOR
    seed: int = 0
    reuse_artifact: bool = True
    sweep: str = "off"
    echo: bool = True


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def truncate_stream(tokens: torch.Tensor, targets: int, seq_len: int) -> torch.Tensor:
    """The first ``targets`` targets of ``tokens`` (rounded down to whole ``seq_len`` windows when
    that leaves at least one), as ``targets + 1`` tokens."""
    n = min(int(targets), int(tokens.numel()) - 1)
    if n >= seq_len:
        n -= n % seq_len
    return tokens[: n + 1].clone()


def flip_targets_for(ctx: RunContext, updates: list[dict[str, Any]], opts: "CheckOptions") -> int:
    """Targets in the flip stream: ``opts.flip_targets``, else ``FLIP_WINDOWS`` eval windows, or
    ``FLIP_CHUNKS`` chunks when the run on the whole stream updated chunk by chunk (``updates``:
    its update ledger events)."""
    if opts.flip_targets:
        return int(opts.flip_targets)
    n = FLIP_WINDOWS * ctx.recipe.eval.seq_len
    ups = list(updates)
    if ups:
        lo, hi = (int(x) for x in ups[0]["targets"])
        n = max(n, FLIP_CHUNKS * (hi - lo))
    return n


def _rank_first_targets(ctx: RunContext, num_targets: int) -> list[int]:
    if ctx.world_size <= 1:
        return []
    from ..eval.windows import WindowSchedule

    ev = ctx.recipe.eval
    s = WindowSchedule(num_targets, ev.seq_len, ev.stride)
    lo = s.score_lo()
    return [int(lo[s.rank_slice(r, ctx.world_size)[0]]) for r in range(1, ctx.world_size)
            if s.rank_slice(r, ctx.world_size)[0] < len(s)]


def _events(outcome: Outcome, kind: str) -> list[dict[str, Any]]:
    ledgers = outcome.info.get("ledgers", {})
    evs = [e for r in sorted(ledgers) for e in ledgers[r] if e["event"] == kind]
    return sorted(evs, key=lambda e: e["targets"][0]) if len(ledgers) > 1 else evs


def _reads_before_eval(outcome: Outcome) -> bool:
    return any(r.get("phase") != "eval" for r in outcome.info.get("reads", []) + outcome.info.get("unrecorded_loads", []))


def _sweep_row(ctx: RunContext, num_targets: int) -> int:
    ev = ctx.recipe.eval
    stride = ev.stride or ev.seq_len
    return max(0, min(num_targets - 1, ev.seq_len + max(1, stride // 2)))


def _say(ctx: RunContext, opts: CheckOptions, msg: str) -> None:
    if opts.echo and ctx.is_main:
        print(msg, flush=True)


class _FlipRun:
    """The flip test and the sweep on one PostTraining, with the facts they give."""

    def __init__(self, ctx: RunContext, E: PostTraining, opts: CheckOptions):
        self.ctx, self.E, self.opts = ctx, E, opts
        self.outcomes: list[Outcome] = []
        self.reuse = False
        self.pinned: Optional[tuple] = None
        self.eval_rep: Optional[FlipReport] = None

    def run(self, stream: torch.Tensor, watch=(), *, reuse: bool = False, probe: bool = False) -> Outcome:
        """One run of the black box, kept for the facts (probes write their artifact aside)."""
        path = self.E.work_dir / "probe.bin" if probe else None
        out = self.E(stream, watch, reuse_artifact=reuse, artifact_path=path)
        self.outcomes.append(out)
        return out

    def flip(self, stream: torch.Tensor, base: Optional[Outcome], reusable: bool = False) -> tuple[FlipReport, Outcome]:
        """The flip test on ``stream``; ``base``: its first run when already done; ``reusable``: the
        last artifact cannot depend on the stream (no validation read before scoring), so the first
        run may score it instead of re-running pre-quant (the repeat run always re-runs it)."""
        ctx, opts = self.ctx, self.opts
        t0 = time.time()
        if base is None:
            base = self.run(stream, reuse=reusable and opts.reuse_artifact)
        n = int(stream.numel()) - 1
        self.reuse = bool(opts.reuse_artifact and self.E.whole and not _reads_before_eval(base))
        from ..eval.windows import WindowSchedule

        ev = ctx.recipe.eval
        sched = WindowSchedule(n, ev.seq_len, ev.stride)
        probes = choose_probes(n, _events(base, "score"), _events(base, "update"), _rank_first_targets(ctx, n),
                               stride=ev.stride or ev.seq_len, max_probes=opts.probes, seed=opts.seed,
                               windows=list(zip(sched.score_lo().tolist(), sched.score_hi().tolist())))
        _say(ctx, opts, f"check: flip test on {n} targets, {len(probes)} probes, "
                        f"{'whole pipeline per probe' if self.E.whole and not self.reuse else 'eval-time runs per probe'}")
        base2 = self.run(stream, [p.j - 1 for p in probes])
        self.pinned = self.E.pin()
        rep = run_flip(lambda x, w: self.run(x, w, reuse=self.reuse, probe=True), stream, probes,
                       ctx.recipe.data.vocab_size, base=base, base2=base2, seed=opts.seed, safety=opts.safety,
                       floor=opts.floor, progress=(lambda m: _say(ctx, opts, m)))
        rep.note = (rep.note + "; " if rep.note else "") + f"{time.time() - t0:.1f} s"
        self.eval_rep = None
        if self.E.whole and not self.reuse:
            # the same flips at eval time alone: which stage leaks
            self.E.restore(self.pinned)
            _say(ctx, opts, "check: the same probes at eval time alone (base artifact)")
            base3 = self.run(stream, [p.j - 1 for p in probes], reuse=True)   # eval-time noise floor
            self.eval_rep = run_flip(lambda x, w: self.run(x, w, reuse=True, probe=True), stream, probes,
                                     ctx.recipe.data.vocab_size, base=base2, base2=base3, seed=opts.seed,
                                     safety=opts.safety, floor=opts.floor, progress=(lambda m: _say(ctx, opts, m)))
        return rep, base2

    def sweep(self, stream: torch.Tensor, base: Outcome) -> tuple[list[SweepResult], Optional[str]]:
        """The vocabulary sweep as ``opts.sweep`` asks (on the base artifact); returns the sweeps
        and, when none ran although the tap could not verify normalization, how to run one."""
        ctx, opts = self.ctx, self.opts
        norm = base.info.get("norm")
        verified = norm is not None and norm.rows_ok > 0 and norm.rows_bad == 0
        if opts.sweep == "off":
            return [], f"--sweep on: {ctx.recipe.data.vocab_size} eval runs" if not verified else None
        if opts.sweep == "auto" and verified:
            return [], None
        row = _sweep_row(ctx, int(stream.numel()) - 1)
        V = ctx.recipe.data.vocab_size
        _say(ctx, opts, f"check: vocabulary sweep at t={row + 1}: {V} eval runs")
        if self.pinned is not None:
            self.E.restore(self.pinned)
        res = vocab_sweep(lambda x, w: self.E(x, w, reuse_artifact=True), stream, row, V)
        return [res], None


def _facts_from_outcomes(facts: Facts, fr: _FlipRun, skip_first: bool = False) -> None:
    """Violations and ledger audits of every run of the flip test (``skip_first``: the base run
    is the recipe's own run, already in the facts)."""
    outcomes = fr.outcomes[1:] if skip_first else fr.outcomes
    for o in outcomes:
        facts.violations += o.info.get("violations", [])
    labels = ["flip repeat"] if skip_first else ["flip base", "flip repeat"]
    for lab, o in zip(labels, outcomes):
        facts.ledgers.append((lab, audit_ledgers(o.info.get("ledgers", {}))))
    bad = [a for a in (audit_ledgers(o.info.get("ledgers", {})) for o in outcomes[len(labels):]) if not a.ok]
    if bad:
        facts.ledgers.append(("flip probe", bad[0]))


def _hardware(ctx: RunContext) -> str:
    if ctx.device.type == "cuda":
        return torch.cuda.get_device_name(ctx.device)
    return ctx.device.type


# ---------------------------------------------------------------------------------------------
# RECIPE
# ---------------------------------------------------------------------------------------------


def check_recipe(recipe: Recipe, out_dir: Path, opts: Optional[CheckOptions] = None, *, reg: Any = None) -> CheckReport:
    """Train ``recipe``, run it, run the flip test and sweep, decide every rule; write the run
    files and ``compliance.json`` into ``out_dir``."""
    from ..run import Run

    opts = opts or CheckOptions()
    out = Path(out_dir)
    run = Run.from_recipe(recipe, out, reg=reg, echo=opts.echo)
    ctx = run.ctx
    try:
        run.setup()
        run.data()
        run.build()
        _say(ctx, opts, f"check: training {recipe.source_path or 'recipe'} ({run.n_params:,} params)")
        tr = run.train(monitor=False)
        trained = snapshot_trained(run.model, ctx, tr.steps, tr.train_seconds)
        run.model = None
        E = PostTraining(ctx, out / ".check", trained=trained)
        _say(ctx, opts, "check: the run (pre-quant, artifact, scoring on the recipe's validation stream)")
        full = E(None, artifact_path=out / rundir.ARTIFACT, log=ctx.log)
        # as golf run counts it: the script golf export writes, once the run imported what it uses
        # (golf run also shows progress displays, which the check's runs do not)
        import golf_core.progress  # noqa: F401

        run.final, run.sizes, run.eval_seconds = full.info["result"], full.info, full.info["eval_seconds"]
        reads = trained.reads + full.info["reads"]
        res = run.result(reads=reads, written_by="golf check", aborted=full.aborted)
        code_bytes, model_bytes = res.code_bytes, res.model_bytes
        result = res.as_json()
        if ctx.is_main:
            rundir.write_json_atomic(out / rundir.RESULT, result)
            with open(out / "eval_ledger.jsonl", "w", encoding="utf-8") as fh:
                for ev in full.info["ledgers"].get(0, []):
                    fh.write(json.dumps(ev) + "\n")

        facts = Facts(tracks=ctx.plugins.legality(), vocab_size=recipe.data.vocab_size,
                      adapter=full.info.get("adapter"), norm=full.info.get("norm"),
                      coverage=full.coverage, reads=reads, unrecorded_loads=full.info["unrecorded_loads"],
                      code_bytes=code_bytes, model_bytes=model_bytes, cap_bytes=recipe.artifact.cap_bytes,
                      train_seconds=tr.train_seconds, eval_seconds=full.info["eval_seconds"],
                      device=_hardware(ctx), world_size=ctx.world_size)
        facts.violations += full.info.get("violations", [])
        facts.ledgers.append(("the run", audit_ledgers(full.info.get("ledgers", {}))))

        full_stream = StreamContext.derive(ctx, None).eval_stream()
        flip_stream = truncate_stream(full_stream, flip_targets_for(ctx, _events(full, "update"), opts), recipe.eval.seq_len)
        fr = _FlipRun(ctx, E, opts)
        same = flip_stream.numel() == full_stream.numel()
        if full.aborted is not None:
            facts.flip_skipped = f"the run itself aborted: {full.aborted}"
        else:
            if same:
                fr.outcomes.append(full)
            rep, base2 = fr.flip(flip_stream, full if same else None, reusable=not _reads_before_eval(full))
            facts.flip, facts.flip_eval = rep, fr.eval_rep
            facts.flip_scope = "whole post-training pipeline" + (
                " (probes score the base artifact: no validation read before scoring)" if fr.reuse else "")
            facts.sweeps, facts.sweep_skipped = fr.sweep(flip_stream, full)
            _facts_from_outcomes(facts, fr, skip_first=same)
        report = CheckReport(target=str(recipe.source_path or "recipe"), mode="recipe", rules=decide(facts),
                             evidence=_evidence(facts, out, result))
        if ctx.is_main:
            report.write(out)
        return report
    finally:
        shutil.rmtree(out / ".check", ignore_errors=True)
        run.close()


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
    result = _read_json(run_dir / rundir.RESULT)
    man = _read_json(run_dir / rundir.MANIFEST) if (run_dir / rundir.MANIFEST).is_file() else {}
    out = Path(out_dir) if out_dir is not None else run_dir
    work = out / ".check"
    run = Run.from_recipe(recipe, None, reg=reg, echo=False)
    ctx = run.ctx
    try:
        trained: Optional[Trained] = None
        ckpt = _final_checkpoint(run_dir, result.get("steps"))
        if ckpt is not None:
            _say(ctx, opts, f"check: weights from the final checkpoint {ckpt}")
            run.setup()
            run.build()
            tr = run.train(resume=ckpt, checkpoint_dir=work / "ckpt", monitor=False)
            trained = snapshot_trained(run.model, ctx, tr.steps, tr.train_seconds)
            run.model = None
        E = PostTraining(ctx, work, trained=trained, artifact=None if trained else run_dir / rundir.ARTIFACT)
        leg = result.get("legality", {}) or {}
        dev = man.get("device", {}) or {}
        facts = Facts(tracks=ctx.plugins.legality(), vocab_size=recipe.data.vocab_size,
                      coverage_ok=(leg.get("checks", {}) or {}).get("coverage_exactly_once"),
                      num_targets=result.get("val_tokens"), reads=list(leg.get("validation_reads", []) or []),
                      code_bytes=result.get("code_bytes"), model_bytes=result.get("model_bytes"),
                      cap_bytes=int(result.get("cap_bytes", recipe.artifact.cap_bytes)),
                      train_seconds=result.get("train_seconds"), eval_seconds=result.get("eval_seconds"),
                      device=dev.get("name") or dev.get("type", "?"),
                      world_size=int(man.get("world_size", result.get("world_size", 1)) or 1))
        ledger_path = run_dir / "eval_ledger.jsonl"
        events: list[dict[str, Any]] = []
        if ledger_path.is_file():
            events = [json.loads(line) for line in ledger_path.read_text().splitlines() if line.strip()]
            from .ledger import audit_ledger

            one_of_many = facts.world_size > 1   # the file holds rank 0's ledger only
            facts.ledgers.append(("the run's eval_ledger.jsonl" + (" (rank 0)" if one_of_many else ""),
                                  audit_ledger(events, check_scored=not one_of_many)))
        full_stream = StreamContext.derive(ctx, None).eval_stream()
        updates = [e for e in events if e.get("event") == "update"]
        flip_stream = truncate_stream(full_stream, flip_targets_for(ctx, updates, opts), recipe.eval.seq_len)
        fr = _FlipRun(ctx, E, opts)
        base = fr.run(flip_stream)
        facts.adapter, facts.norm = base.info.get("adapter"), base.info.get("norm")
        facts.unrecorded_loads = list(base.info.get("unrecorded_loads", []))
        if trained is not None:  # the re-run's reads after training carry the plugin's name
            facts.reads = [r for r in facts.reads if r.get("phase") == "train"] + list(base.info.get("reads", []))
        if facts.coverage_ok is None:
            facts.coverage = base.coverage
        if base.aborted is not None:
            facts.flip_skipped = f"scoring the flip stream aborted: {base.aborted}"
            facts.violations += base.info.get("violations", [])
        else:
            rep, _ = fr.flip(flip_stream, base)
            facts.flip, facts.flip_eval = rep, fr.eval_rep
            facts.flip_scope = ("whole post-training pipeline (weights from the final checkpoint)" + (
                                    "; probes score the base artifact: no validation read before scoring" if fr.reuse
                                    else "") if trained else
                                "eval-time adaptation (decode + scoring of artifact.bin; no trained weights in the "
                                "run directory: pre-quant judged from result.json)")
            facts.sweeps, facts.sweep_skipped = fr.sweep(flip_stream, base)
            _facts_from_outcomes(facts, fr)
        report = CheckReport(target=str(run_dir), mode="run directory", rules=decide(facts),
                             evidence=_evidence(facts, out, result))
        if ctx.is_main:
            report.write(out)
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)
        run.close()


def _evidence(f: Facts, out: Path, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "flip": None if f.flip is None else {**f.flip.as_dict(), "scope": f.flip_scope},
        "flip_eval_time": None if f.flip_eval is None else f.flip_eval.as_dict(),
        "flip_skipped": f.flip_skipped,
        "sweeps": [s.as_dict() for s in f.sweeps],
        "hardware": {"device": f.device, "world_size": f.world_size},
        "clocks": {"train_seconds": f.train_seconds, "eval_seconds": f.eval_seconds},
        "bytes": {"code_bytes": f.code_bytes, "model_bytes": f.model_bytes, "cap_bytes": f.cap_bytes},
        "tracks": f.tracks,
        "validation_reads": f.reads,
        "val_bpb": result.get("val_bpb"),
        "out_dir": str(out),
    }
