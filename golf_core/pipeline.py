"""The phases of one run, in order, calling the hooks.

data -> build -> optimize -> train -> pre-quant -> quantize -> compress -> artifact.bin ->
decode into a fresh model -> eval (adapters) -> report. The final score is always computed on
weights decoded from ``artifact.bin`` into a freshly built model.
"""
from __future__ import annotations

import platform
import subprocess
import time
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from . import __version__, rundir
from .context import RunContext, resolve_device
from .errors import ArtifactError, GolfError
from .plugins import ActivePlugins, PluginRegistry, activate, registry
from .recipe import Recipe
from .model.seam_owners import build_with_seam_owners
from .train.rng import seed_everything

#: Legality tracks from least to most severe; a run takes the most severe of its plugins.
TRACK_ORDER = ("fixed-predictor", "score-first", "not-causal", "trains-on-val")


def build_model(recipe: Recipe, plugins: ActivePlugins, ctx: RunContext) -> nn.Module:
    """The baseline GPT from ``[model]``, changed by every ``golf_build_model`` transform in
    recipe order, then laid out in the run's dtypes on its device."""
    from .model import GPT, GPTConfig, prepare_for_device

    with ctx.in_phase("build"):
        cfg = GPTConfig.from_section(recipe.model, recipe.data.vocab_size)
        model = GPT(cfg)
        model = build_with_seam_owners(plugins, model, ctx)
        prepare_for_device(model, ctx.device, dtype=recipe.model.dtype)
        if ctx.device.type == "cuda" and ctx.dtype == torch.bfloat16 and getattr(model, "attention_backend", "") == "sdpa":
            from .model import use_baseline_sdpa_kernels

            use_baseline_sdpa_kernels()  # the baseline's flash-only SDPA kernel
    return model


def count_params(recipe: Recipe, plugins: ActivePlugins) -> int:
    """Parameter count of the recipe's model (built on CPU in float32, no data needed)."""
    from .model import count_parameters

    ctx = RunContext(recipe=recipe, plugins=plugins, device=torch.device("cpu"))
    with torch.device("meta"):
        model = _build_bare(recipe, plugins, ctx)
    return count_parameters(model)


def _build_bare(recipe: Recipe, plugins: ActivePlugins, ctx: RunContext) -> nn.Module:
    from .model import GPT, GPTConfig

    cfg = GPTConfig.from_section(recipe.model, recipe.data.vocab_size)
    return build_with_seam_owners(plugins, GPT(cfg), ctx)


def _git_state() -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True, timeout=5)
        if sha.returncode == 0:
            return {"sha": sha.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        pass
    return {"sha": None, "dirty": None}


def manifest(ctx: RunContext, model: Optional[nn.Module] = None) -> dict[str, Any]:
    """What ``manifest.json`` records: versions, device, world size, seed, git state."""
    from .data.preflight import data_record

    ap = ctx.plugins
    dev: dict[str, Any] = {"type": ctx.device.type}
    if ctx.device.type == "cuda":
        dev["name"] = torch.cuda.get_device_name(ctx.device)
        dev["cuda"] = torch.version.cuda
    return {
        "golf_core": __version__,
        "plugins": [
            {"name": n, "dist": ap.entries[n].dist, "version": ap.entries[n].version,
             "options": ap.options[n].model_dump(mode="json")}
            for n in ap.order
        ],
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": dev,
        "world_size": ctx.world_size,
        "seed": ctx.recipe.train.seed,
        "attention_backend": getattr(model, "attention_backend", None) if model is not None else None,
        "recipe_sha256": ctx.recipe.sha256(),
        "source": ctx.recipe.source_path,
        "tiny": ctx.recipe.tiny,
        "git": _git_state(),
        "data": data_record(ctx.data),
    }


# ---------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------


def make_session(ctx: RunContext, stride: Optional[int]):
    """An EvalSession over the run's validation stream (the eval phase's own read)."""
    from .eval.session import EvalSession, eval_batch_seqs
    from .eval.windows import WindowSchedule
    from .train.loop import grad_accum_steps

    ev = ctx.recipe.eval
    tokens = ctx._load_validation()
    schedule = WindowSchedule(int(tokens.numel()) - 1, ev.seq_len, stride)
    # the baseline's geometry: batch_tokens // (world * grad_accum) tokens per rank and batch
    batch_seqs = eval_batch_seqs(ev.batch_tokens, ev.seq_len, ctx.world_size, grad_accum_steps(ctx.recipe.train, ctx.world_size))
    return EvalSession(tokens, ctx.luts, schedule, batch_seqs=batch_seqs, device=ctx.device, rank=ctx.rank,
                       world_size=ctx.world_size)


def evaluate(model: nn.Module, ctx: RunContext, *, stride: Optional[int], adapt: bool, progress: bool = False):
    """Score the validation stream; with ``adapt`` the active eval adapter (if any) drives it.

    :return: ``(EvalResult, session)``.
    """
    from .eval.score import score_fixed

    session = make_session(ctx, stride)
    if progress:
        session.progress_desc = "eval"
    was_training = model.training
    model.eval()
    try:
        if adapt:
            ctx.plugins.exclusive("golf_eval_adapt", default=score_fixed, model=model, session=session, ctx=ctx)
        else:
            score_fixed(model=model, session=session, ctx=ctx)
    finally:
        model.train(was_training)
    return session.result(), session


# ---------------------------------------------------------------------------------------------
# quantize, compress, artifact
# ---------------------------------------------------------------------------------------------


def _default_quantize(model: nn.Module, ctx: RunContext):
    from .quant.int8 import quantize_state_dict_int8
    from .train.optim import control_patterns

    # the same control-tensor list the optimizer routes by (baseline's + the model's extras)
    return quantize_state_dict_int8(model.state_dict(), control_patterns=control_patterns(model))


def _default_dequantize(quantized, ctx: RunContext):
    from .quant.dequant import dequantize

    return dequantize(quantized)


def default_compress(data: bytes, ctx: RunContext):
    """The core's ``golf_compress``: ``[artifact] byte_shuffle`` (BSHF stride 2), then
    ``[artifact] compressor``; returns ``(codec, blob)``."""
    from .quant.compress import compress_bytes

    art = ctx.recipe.artifact
    return compress_bytes(data, art.compressor, 2 if art.byte_shuffle else 0)


_default_compress = default_compress


def _default_decompress(codec: str, data: bytes, ctx: RunContext):
    from .quant.bounded import declared_limit
    from .quant.compress import decompress_bytes

    return decompress_bytes(codec, data, max_bytes=declared_limit(ctx.recipe))


#: Hooks through which a plugin changes what an artifact decodes to or how it is scored.
EVAL_HOOKS = ("golf_build_model", "golf_dequantize", "golf_decompress", "golf_on_artifact_load", "golf_eval_adapt")


def rebuild_info(ctx: RunContext) -> list[dict[str, Any]]:
    """Every active plugin with its version and options, and which of its hooks matter when
    the artifact is decoded and scored (``golf eval`` refuses to run without those)."""
    ap = ctx.plugins
    return [
        {"name": n, "version": ap.entries[n].version, "options": ap.options[n].model_dump(mode="json"),
         "required_on_load": ap.info(n).required_on_load,
         "eval_hooks": [h for h in EVAL_HOOKS if h in ap.entries[n].hooks]}
        for n in ap.order
    ]


def artifact_for(ctx: RunContext, codec: str, payload: bytes):
    """The ``Artifact`` container a run writes around a compressed payload (header: model
    config, the plugins needed to rebuild and score it, golf version, the resolved recipe)."""
    from .quant.artifact import Artifact

    return Artifact(codec=codec, payload=payload,
                    model={**ctx.recipe.model.model_dump(mode="json"), "vocab_size": ctx.recipe.data.vocab_size},
                    plugins=rebuild_info(ctx),
                    extra={"golf_core": __version__, "recipe_sha256": ctx.recipe.sha256(), "recipe": ctx.recipe.to_dict()})


def write_artifact(model: nn.Module, ctx: RunContext, path: Path) -> dict[str, Any]:
    """Quantize, serialize and compress ``model`` into ``path``; return byte figures."""
    from .quant.artifact import pack_artifact
    from .quant.serialize import serialize_quantized

    with ctx.in_phase("quantize"):
        qm = ctx.plugins.exclusive("golf_quantize", default=_default_quantize, model=model, ctx=ctx)
    raw = serialize_quantized(qm)
    with ctx.in_phase("compress"):
        codec, blob = ctx.plugins.exclusive("golf_compress", default=default_compress, data=raw, ctx=ctx)
    data = pack_artifact(artifact_for(ctx, codec, blob))
    if ctx.is_main:
        rundir.write_bytes_atomic(path, data)
    return {"model_bytes": len(data), "serialized_bytes": len(raw), "quantized": qm}


def read_quantized(path: Path, ctx: RunContext):
    """Read ``artifact.bin`` and decode it (``golf_decompress``) into a ``QuantizedModel``."""
    from .quant.artifact import read_artifact
    from .quant.serialize import deserialize_quantized

    art = read_artifact(path)
    raw = ctx.plugins.exclusive("golf_decompress", default=_default_decompress, codec=art.codec, data=art.payload,
                                ctx=ctx)
    try:
        return deserialize_quantized(raw)
    except GolfError:
        raise
    except Exception as e:  # noqa: BLE001 - any decoding failure is a corrupt artifact
        raise ArtifactError(f"{path}: cannot decode the model payload: {e}") from None


def load_artifact_into_fresh_model(path: Path, ctx: RunContext) -> nn.Module:
    """Build a fresh model (with every ``golf_build_model`` transform) and load the weights
    decoded from ``artifact.bin``; then the ``golf_on_artifact_load`` transforms."""
    qm = read_quantized(path, ctx)
    model = build_model(ctx.recipe, ctx.plugins, ctx)
    state = ctx.plugins.exclusive("golf_dequantize", default=_default_dequantize, quantized=qm, ctx=ctx)
    template = model.state_dict()
    missing = sorted(set(template) - set(state))
    unexpected = sorted(set(state) - set(template))
    if missing or unexpected:
        culprit = (missing or unexpected)[0]
        raise ArtifactError(f"{path}: artifact does not fit the rebuilt model ({'missing' if missing else 'unexpected'} {culprit!r})")
    state = {k: v.to(dtype=template[k].dtype, device=template[k].device) for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    with ctx.in_phase("load"):
        model = ctx.plugins.transform("golf_on_artifact_load", "model", model, ctx=ctx)
    return model


# ---------------------------------------------------------------------------------------------
# legality summary (the cheap checks every run ends with)
# ---------------------------------------------------------------------------------------------


def legality_summary(ctx: RunContext, final: Any, under_cap: bool) -> dict[str, Any]:
    """Bytes under the cap, coverage exactly 1, validation reads, declared tracks."""
    tracks = ctx.plugins.legality()
    reads = list(ctx.validation_reads)
    run_track = "fixed-predictor"
    for t in list(tracks.values()) + (["trains-on-val"] if reads else []):
        if TRACK_ORDER.index(t) > TRACK_ORDER.index(run_track):
            run_track = t
    coverage_ok = bool(final.coverage_ok)
    checks = {
        "under_cap": under_cap,
        "coverage_exactly_once": coverage_ok,
        "no_validation_reads_outside_eval": not reads,
        "causal_plugins_only": all(t != "not-causal" for t in tracks.values()),
    }
    return {
        "track": run_track,
        "trains_on_validation": run_track == "trains-on-val",
        "declared": ctx.recipe.meta.legality,
        "plugins": tracks,
        "validation_reads": reads,
        "checks": checks,
        "passed": all(checks.values()),
    }


# ---------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------


def make_context(recipe: Recipe, out_dir: Optional[Path], *, reg: Optional[PluginRegistry] = None,
                 echo: bool = True) -> RunContext:
    """Activate the recipe's plugins, set up distributed state and logs."""
    from .train.distributed import init_distributed

    plugins = activate(recipe, reg)
    # write back the validated (and, under --tiny, scaled) options so resolved.toml repeats the run
    recipe.options = {**recipe.options, **{n: o.model_dump(mode="json") for n, o in plugins.options.items()}}
    dist = init_distributed(recipe.train.device)
    device = resolve_device(recipe.train.device, dist.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    elif recipe.train.cpu_threads:
        torch.set_num_threads(recipe.train.cpu_threads)
    log = rundir.RunLog(out_dir, is_main=dist.rank == 0, echo=echo)
    return RunContext(recipe=recipe, plugins=plugins, device=device, out_dir=out_dir, rank=dist.rank,
                      world_size=dist.world_size, local_rank=dist.local_rank, log=log)


def run_recipe(recipe: Recipe, out_dir: Path | str, *, resume: Optional[Path] = None, echo: bool = True,
               reg: Optional[PluginRegistry] = None, progress: bool = True) -> dict[str, Any]:
    """Train, quantize, compress, decode, score and audit one recipe; write the run directory.

    :param resume: a checkpoint file to continue from (``golf run --resume DIR``).
    :return: the ``result.json`` dict.
    """
    from .export.shipping import ship_run
    from .train.loop import train

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ctx = make_context(recipe, out, reg=reg, echo=echo)
    t_start = time.time()
    try:
        if ctx.is_main:
            rundir.write_text_atomic(out / rundir.RESOLVED, recipe.to_toml())
        seed_everything(recipe.train.seed)
        ctx.log.info(f"golf:{__version__} recipe:{recipe.source_path} plugins:{','.join(recipe.plugins) or '-'}")
        with ctx.in_phase("data"):
            data = ctx.data
            ctx.log.info(f"data:{data.dataset_dir} train_shards:{len(data.train_files)} val_shards:{len(data.val_files)}")
        model = build_model(recipe, ctx.plugins, ctx)
        from .model import count_parameters

        n_params = count_parameters(model)
        ctx.log.info(f"model_params:{n_params} attention:{getattr(model, 'attention_backend', '?')} device:{ctx.device}")
        if ctx.is_main:
            rundir.write_json_atomic(out / rundir.MANIFEST, manifest(ctx, model))

        def monitor(m: nn.Module) -> dict[str, float]:
            res, _ = evaluate(m, ctx, stride=None, adapt=False)
            return {"val_loss": res.val_loss, "val_bpb": res.val_bpb}

        with ctx.in_phase("train"):
            tr = train(model, ctx, evaluate=monitor, resume_from=resume, progress=progress)
        with ctx.in_phase("pre_quant"):
            model = ctx.plugins.transform("golf_pre_quant", "model", model, ctx=ctx)
        with ctx.in_phase("eval"):
            pre, _ = evaluate(model, ctx, stride=None, adapt=False)
        ctx.log.info(f"pre_quant val_loss:{pre.val_loss:.8f} val_bpb:{pre.val_bpb:.8f}")
        ctx.log.metric(event="val", phase="pre_quant", val_loss=pre.val_loss, val_bpb=pre.val_bpb, step=tr.steps)

        art_path = out / rundir.ARTIFACT
        sizes = write_artifact(model, ctx, art_path)
        _barrier(ctx)

        t_eval = time.time()
        with ctx.in_phase("eval"):
            del model
            fresh = load_artifact_into_fresh_model(art_path, ctx)
            final, session = evaluate(fresh, ctx, stride=recipe.eval.stride, adapt=True, progress=progress)
        eval_seconds = time.time() - t_eval
        ctx.log.info(f"final val_loss:{final.val_loss:.8f} val_bpb:{final.val_bpb:.8f} eval_seconds:{eval_seconds:.2f}")
        ctx.log.metric(event="val", phase="final", val_loss=final.val_loss, val_bpb=final.val_bpb, step=tr.steps)
        if ctx.is_main and getattr(session, "ledger", None):
            session.write_ledger(out / "eval_ledger.jsonl")
        # code bytes = the size of the train_gpt.py that `golf export` writes for this run,
        # computed after the final eval, once the run has imported every module it uses
        code = ship_run(ctx)
        code_bytes = code.code_bytes
        artifact_bytes = code_bytes + sizes["model_bytes"]
        cap = recipe.artifact.cap_bytes
        under_cap = artifact_bytes <= cap
        ctx.log.info(f"artifact model_bytes:{sizes['model_bytes']} code_bytes:{code_bytes} "
                     f"artifact_bytes:{artifact_bytes} cap:{cap} under_cap:{under_cap}")
        if not under_cap:
            ctx.log.info(f"WARNING: artifact is {artifact_bytes - cap} bytes OVER the {cap}-byte cap")

        result: dict[str, Any] = {
            "val_bpb": final.val_bpb,
            "val_loss": final.val_loss,
            "pre_quant_val_bpb": pre.val_bpb,
            "pre_quant_val_loss": pre.val_loss,
            "steps": tr.steps,
            "train_seconds": tr.train_seconds,
            "eval_seconds": eval_seconds,
            "wall_seconds": time.time() - t_start,
            "code_bytes": code_bytes,
            "model_bytes": sizes["model_bytes"],
            "artifact_bytes": artifact_bytes,
            "cap_bytes": cap,
            "under_cap": under_cap,
            "plugins": list(recipe.plugins),
            "val_tokens": final.tokens,
            "val_bytes": final.bytes,
            "params": n_params,
            "seed": recipe.train.seed,
            "world_size": ctx.world_size,
            "recipe_sha256": recipe.sha256(),
            "tiny": recipe.tiny,
            "code": code.record(),
        }
        result["legality"] = legality_summary(ctx, final, under_cap)
        with ctx.in_phase("report"):
            ctx.plugins.observe("golf_summary", result=result, ctx=ctx)
        if ctx.is_main:
            rundir.write_json_atomic(out / rundir.RESULT, result)
        return result
    finally:
        ctx.log.close()


def _barrier(ctx: RunContext) -> None:
    if ctx.world_size > 1 and torch.distributed.is_initialized():
        torch.distributed.barrier()


load_run_recipe = rundir.load_run_recipe


__all__ = [
    "build_model", "count_params", "evaluate", "load_artifact_into_fresh_model", "make_context",
    "run_recipe", "write_artifact", "load_run_recipe", "legality_summary", "manifest",
]
