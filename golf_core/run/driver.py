"""The run driver: the one place that knows the order of a run's phases.

setup -> data -> build -> train -> pre-quant (+ its eval) -> artifact (quantize, compress,
``artifact.bin``) -> decode into a fresh model -> eval (adapters) -> report (``result.json``).
The final score is always computed on weights decoded from ``artifact.bin`` into a freshly
built model. ``golf run``, ``golf eval``, ``golf ablate``, ``golf check``, the exported script
and the benches drive a :class:`Run`; each phase method may also be called alone (a bench that
only trains, ``golf eval`` that only decodes and scores).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

from torch import nn

from .. import __version__, rundir
from ..context import RunContext
from ..plugins import PluginRegistry
from ..recipe import Recipe
from ..scripted import AUDITED
from ..train.distributed import barrier
from ..train.rng import seed_everything
from .artifact import load_artifact_into_fresh_model, on_artifact_load, write_artifact
from .build import build_model
from .manifest import manifest
from .result import Result, legality_summary
from .scoring import evaluate, score
from .setup import make_context


class Run:
    """One run of a recipe over a :class:`RunContext` (see the module docstring).

    Phase methods keep what they produce on the run (``model``, ``train_result``, ``pre``,
    ``sizes``, ``final``, ``session``) so that later phases and :meth:`result` find it.

    :param ctx: the run's context (``make_context``; ``golf check`` passes a derived one).
    :param progress: show progress bars (main rank).
    """

    def __init__(self, ctx: RunContext, *, progress: bool = False):
        self.ctx = ctx
        self.progress = progress
        self.t_start = time.time()
        self.model: Optional[nn.Module] = None
        self.n_params: Optional[int] = None
        self.train_result: Any = None
        self.pre: Any = None
        self.sizes: dict[str, Any] = {}
        self.final: Any = None
        self.session: Any = None
        self.eval_seconds: Optional[float] = None
        self._t_decode: Optional[float] = None  # when the artifact's decode began (eval_seconds counts it)
        self._t_train_end: Optional[float] = None  # post_train_seconds count from here
        self.post_train_seconds: Optional[float] = None
        self.adapt_seconds: Optional[float] = None

    @classmethod
    def from_recipe(cls, recipe: Recipe, out_dir: Optional[Path | str], *, reg: Optional[PluginRegistry] = None,
                    echo: bool = True, progress: bool = False) -> "Run":
        """A run of ``recipe`` writing into ``out_dir`` (created; ``None``: no run directory)."""
        out = Path(out_dir) if out_dir is not None else None
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
        return cls(make_context(recipe, out, reg=reg, echo=echo), progress=progress)

    @property
    def out(self) -> Optional[Path]:
        """The run directory (``None`` when the run writes none)."""
        return self.ctx.out_dir

    @property
    def artifact_path(self) -> Path:
        """``artifact.bin`` in the run directory."""
        if self.out is None:
            raise ValueError("this run has no output folder for artifact.bin")
        return self.out / rundir.ARTIFACT

    def close(self) -> None:
        """Close the run's log files."""
        self.ctx.log.close()

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the whole run ---------------------------------------------------------------------

    def execute(self, *, resume: Optional[Path] = None) -> Result:
        """Every phase in order; writes the run directory and returns the result.

        :param resume: a checkpoint to continue training from (``golf run --resume DIR``).
        """
        self.setup()
        self.data()
        self.build()
        self.train(resume=resume)
        self.pre_quant()
        self.pre_quant_eval()
        self.write_artifact()
        self.load_artifact()
        self.eval()
        return self.report()

    def post_train(self, path: Path) -> dict[str, Any]:
        """From trained weights (``self.model``): the pre-quant transforms, then ``artifact.bin``
        at ``path``; the model is dropped (only the artifact is scored)."""
        self.pre_quant()
        sizes = self.write_artifact(path)
        self.model = None
        return sizes

    # -- phases ----------------------------------------------------------------------------

    def setup(self) -> None:
        """Write ``resolved.toml``, seed every RNG, log what runs."""
        ctx, recipe = self.ctx, self.ctx.recipe
        if ctx.is_main and self.out is not None:
            rundir.write_text_atomic(self.out / rundir.RESOLVED, recipe.to_toml())
        seed_everything(recipe.train.seed)
        ctx.log.info(f"golf:{__version__} recipe:{recipe.source_path} plugins:{','.join(recipe.plugins) or '-'}")

    def data(self) -> None:
        """Resolve (and for the demo build) the shards and tokenizer."""
        with self.ctx.in_phase("data"):
            data = self.ctx.data
            self.ctx.log.info(f"data:{data.dataset_dir} train_shards:{len(data.train_files)} val_shards:{len(data.val_files)}")

    def build(self) -> nn.Module:
        """Build the model (``golf_build_model`` transforms); write ``manifest.json``."""
        from ..model import count_parameters

        ctx = self.ctx
        self.model = build_model(ctx.recipe, ctx.plugins, ctx)
        self.n_params = count_parameters(self.model)
        ctx.log.info(f"model_params:{self.n_params} attention:{getattr(self.model, 'attention_backend', '?')} "
                     f"device:{ctx.device}")
        if ctx.is_main and self.out is not None:
            rundir.write_json_atomic(self.out / rundir.MANIFEST, manifest(ctx, self.model))
        return self.model

    def train(self, *, resume: Optional[Path] = None, checkpoint_dir: Optional[Path] = None,
              monitor: bool = True) -> Any:
        """Train ``self.model`` (optimizers, loader and step hooks inside ``golf_core.train``).

        :param resume: a checkpoint to continue from.
        :param checkpoint_dir: where checkpoints go (default: the run directory's ``checkpoints``).
        :param monitor: validate every ``[train] val_loss_every`` steps with the fixed scorer.
        :return: the ``TrainResult``.
        """
        from ..train.loop import train

        def validate(m: nn.Module) -> dict[str, float]:
            res, _ = evaluate(m, self.ctx, stride=None, adapt=False)
            return {"val_loss": res.val_loss, "val_bpb": res.val_bpb}

        with self.ctx.in_phase("train"):
            self.train_result = train(self._model(), self.ctx, evaluate=validate if monitor else None,
                                      resume_from=resume, checkpoint_dir=checkpoint_dir, progress=self.progress)
        self._t_train_end = time.time()
        return self.train_result

    def load_weights(self, state: dict[str, Any]) -> nn.Module:
        """A freshly built model holding ``state`` (trained weights kept from an earlier run)."""
        import torch

        self.model = build_model(self.ctx.recipe, self.ctx.plugins, self.ctx)
        with torch.no_grad():
            self.model.load_state_dict(state, strict=True)
        return self.model

    def pre_quant(self) -> nn.Module:
        """The ``golf_pre_quant`` transforms, in recipe order."""
        with self.ctx.in_phase("pre_quant"):
            self.model = self.ctx.plugins.transform("golf_pre_quant", "model", self._model(), ctx=self.ctx)
        return self.model

    def pre_quant_eval(self) -> Any:
        """Score the weights about to be quantized with the fixed scorer (the quantization gap's base)."""
        ctx = self.ctx
        with ctx.in_phase("eval"):
            self.pre, _ = evaluate(self._model(), ctx, stride=None, adapt=False)
        ctx.log.info(f"pre_quant val_loss:{self.pre.val_loss:.8f} val_bpb:{self.pre.val_bpb:.8f}")
        ctx.log.metric(event="val", phase="pre_quant", val_loss=self.pre.val_loss, val_bpb=self.pre.val_bpb,
                       step=self._steps())
        return self.pre

    def write_artifact(self, path: Optional[Path] = None) -> dict[str, Any]:
        """Quantize and compress ``self.model`` into ``path`` (default: the run's ``artifact.bin``);
        every rank waits until it is written."""
        self.sizes = write_artifact(self._model(), self.ctx, Path(path) if path is not None else self.artifact_path)
        barrier()
        return self.sizes

    def load_artifact(self, path: Optional[Path] = None) -> nn.Module:
        """Drop the trained model and decode ``path`` (default: the run's ``artifact.bin``) into a
        freshly built one (``golf_on_artifact_load`` transforms included)."""
        self.model = None
        self._t_decode = time.time()
        with self.ctx.in_phase("eval"):
            self.model = load_artifact_into_fresh_model(Path(path) if path is not None else self.artifact_path, self.ctx)
        return self.model

    def random_eval_model(self) -> nn.Module:
        """A freshly built model with random weights, prepared as a decoded artifact is
        (``golf_on_artifact_load``): what speed benches score when the weights do not matter."""
        with self.ctx.in_phase("eval"):
            self.model = on_artifact_load(build_model(self.ctx.recipe, self.ctx.plugins, self.ctx), self.ctx)
        return self.model

    def eval(self, session: Any = None) -> Any:
        """The final score: the active eval adapter (else the fixed scorer) over ``session``
        (default: the recipe's validation stream at ``[eval] stride``); writes the eval ledger.
        ``eval_seconds`` counts the artifact's decode when :meth:`load_artifact` ran just before.

        :return: the ``EvalResult``.
        """
        ctx = self.ctx
        t0, self._t_decode = self._t_decode or time.time(), None
        with ctx.in_phase("eval"):
            if session is None:
                self.final, self.session = evaluate(self._model(), ctx, stride=ctx.recipe.eval.stride, adapt=True,
                                                    progress=self.progress)
            else:
                score(self._model(), ctx, session, adapt=True)
                self.final, self.session = session.result(), session
        t1 = time.time()
        self.eval_seconds = t1 - t0
        self.adapt_seconds = getattr(self.session, "adapt_seconds", None)
        self.post_train_seconds = t1 - self._t_train_end if self._t_train_end is not None else None
        clocks = "".join(f" {k}:{v:.2f}" for k, v in (("adapt_seconds", self.adapt_seconds),
                                                      ("post_train_seconds", self.post_train_seconds)) if v is not None)
        ctx.log.info(f"final val_loss:{self.final.val_loss:.8f} val_bpb:{self.final.val_bpb:.8f} "
                     f"eval_seconds:{self.eval_seconds:.2f}{clocks}")
        ctx.log.metric(event="val", phase="final", val_loss=self.final.val_loss, val_bpb=self.final.val_bpb,
                       step=self._steps())
        if AUDITED and ctx.is_main and self.out is not None and getattr(self.session, "ledger", None):
            self.session.write_ledger(self.out / "eval_ledger.jsonl")
        return self.final

    def report(self, *, write: bool = True, **extra: Any) -> Result:
        """Code bytes, the cap, the legality summary and the plugins' ``golf_summary`` keys;
        writes ``result.json`` (main rank, with ``write``).

        :param extra: fields to set or override (``golf check`` records who wrote the result).
        """
        ctx = self.ctx
        result = self.result(**extra)
        data = result.as_json()
        with ctx.in_phase("report"):
            ctx.plugins.observe("golf_summary", result=data, ctx=ctx)
        result = Result.model_validate(data)
        if write and ctx.is_main and self.out is not None:
            rundir.write_json_atomic(self.out / rundir.RESULT, result.as_json())
        return result

    # -- the result ------------------------------------------------------------------------

    def result(self, *, reads: Optional[list[dict[str, Any]]] = None, **extra: Any) -> Result:
        """The :class:`Result` of the phases run so far (code bytes counted now, after the final
        eval, once the run imported every module it uses).

        :param reads: validation reads to judge (default: the context's).
        :param extra: fields to set or override.
        """
        from ..export.shipping import ship_run

        ctx, recipe, tr = self.ctx, self.ctx.recipe, self.train_result
        # code bytes = the size of the train_gpt.py that `golf export` writes for this run
        code = ship_run(ctx)
        artifact_bytes = code.code_bytes + self.sizes["model_bytes"]
        cap = recipe.artifact.cap_bytes
        under_cap = artifact_bytes <= cap
        ctx.log.info(f"artifact model_bytes:{self.sizes['model_bytes']} code_bytes:{code.code_bytes} "
                     f"artifact_bytes:{artifact_bytes} cap:{cap} under_cap:{under_cap}")
        if not under_cap:
            ctx.log.info(f"WARNING: artifact is {artifact_bytes - cap} bytes OVER the {cap}-byte cap")
        fields: dict[str, Any] = dict(
            val_bpb=self.final.val_bpb, val_loss=self.final.val_loss,
            pre_quant_val_bpb=self.pre.val_bpb if self.pre is not None else None,
            pre_quant_val_loss=self.pre.val_loss if self.pre is not None else None,
            steps=tr.steps, train_seconds=tr.train_seconds, eval_seconds=self.eval_seconds,
            adapt_seconds=self.adapt_seconds, post_train_seconds=self.post_train_seconds,
            wall_seconds=time.time() - self.t_start, code_bytes=code.code_bytes,
            model_bytes=self.sizes["model_bytes"], artifact_bytes=artifact_bytes, cap_bytes=cap, under_cap=under_cap,
            plugins=list(recipe.plugins), val_tokens=self.final.tokens, val_bytes=self.final.bytes,
            params=self.n_params, seed=recipe.train.seed, world_size=ctx.world_size,
            recipe_sha256=recipe.sha256(), tiny=recipe.tiny, code=code.record(),
            legality=legality_summary(ctx, self.final, under_cap, reads),
        )
        fields.update(extra)
        return Result(**fields)

    # -- helpers ---------------------------------------------------------------------------

    def _model(self) -> nn.Module:
        if self.model is None:
            raise ValueError("no model yet: build it, load weights or load an artifact first")
        return self.model

    def _steps(self) -> int:
        return self.train_result.steps if self.train_result is not None else 0


def run_recipe(recipe: Recipe, out_dir: Path | str, *, resume: Optional[Path] = None, echo: bool = True,
               reg: Optional[PluginRegistry] = None, progress: bool = True) -> dict[str, Any]:
    """Train, quantize, compress, decode, score and audit one recipe; write the run directory.

    :param resume: a checkpoint file to continue from (``golf run --resume DIR``).
    :return: the ``result.json`` dict.
    """
    with Run.from_recipe(recipe, out_dir, reg=reg, echo=echo, progress=progress) as run:
        return run.execute(resume=resume).as_json()
