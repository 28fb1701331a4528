"""Every hook a golf plugin can implement.

The core owns the sequence of phases (the run driver, ``golf_core.run.driver``); plugins change what a phase
does through these hooks. Hooks run at phase boundaries only, never inside the compiled
training step, so the model that trains is a plain ``nn.Module`` that torch.compile sees whole.

Each hook is declared here once, with its kind (``@golf_hook(kind)``); the kind decides how
the core calls it (:data:`KIND_RULES`, written into each hook's docstring by the decorator) and
everything else derives from :data:`HOOK_KINDS` (``golf_core.plugins``, ``golf plugins``):

* **registration**: called on every *installed* plugin, so that ``golf plugins`` can list
  plugins that no recipe activates.
* **transform**: called once per active plugin, in the order of the recipe's ``plugins``
  list (never pluggy's registration order; ``tryfirst``/``trylast`` are refused). Each
  implementation receives the value the previous one returned; returning ``None`` keeps it.
* **exclusive**: at most one active plugin may implement it. None: the core's default runs.
  Two or more: the recipe fails validation, naming them.
* **observer**: called for every active plugin, in recipe order; return values are ignored
  (or collected per plugin, where the hook says so).

Every hook except the registration hooks receives ``ctx`` (the ``RunContext`` of the run:
recipe, device, rank, stash, logs, clocks, the validation-read ledger, ``ctx.services``) and
``opts`` (this plugin's own validated ``Options`` instance from ``[options.<plugin>]``).
Implementations may declare only the arguments they use, as with pytest.
"""
from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Callable, Literal, Optional

import pluggy

if TYPE_CHECKING:  # pragma: no cover - types for readers and checkers; nothing is imported at run time
    import argparse

    from torch import Tensor, nn

    from .context import RunContext
    from .eval.session import EvalSession
    from .options import Options
    from .quant.quantized import QuantizedModel
    from .technique import TechniqueInfo
    from .train.loop import TrainProgress
    from .train.optim import OptimizerSet

hookspec = pluggy.HookspecMarker("golf")
hookimpl = pluggy.HookimplMarker("golf")

HookKind = Literal["registration", "transform", "exclusive", "observer"]

#: How the core calls a hook of each kind (the sentence each hook's docstring carries).
KIND_RULES: dict[str, str] = {
    "registration": "called on every installed plugin, active or not.",
    "transform": "called on every active plugin in recipe order, each receiving the value the previous "
                 "one returned; return ``None`` to keep it.",
    "exclusive": "at most one active plugin may implement it; with none, the core's default runs.",
    "observer": "called on every active plugin in recipe order.",
}

#: Every hook's kind, in declaration order: the one place hook kinds are stated.
HOOK_KINDS: dict[str, str] = {}


def golf_hook(kind: HookKind) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a hookspec of ``kind``: record it in :data:`HOOK_KINDS`, put the kind's rule into
    its docstring (after the first paragraph), and mark it for pluggy."""
    if kind not in KIND_RULES:
        raise ValueError(f"unknown hook kind {kind!r}; one of {sorted(KIND_RULES)}")

    def declare(fn: Callable[..., Any]) -> Callable[..., Any]:
        HOOK_KINDS[fn.__name__] = kind
        doc = inspect.cleandoc(fn.__doc__ or "")
        first, _, rest = doc.partition("\n\n")
        fn.__doc__ = f"{first}\n\n**{kind.capitalize()}** hook: {KIND_RULES[kind]}" + (f"\n\n{rest}" if rest else "")
        return hookspec(fn)

    return declare


def hooks_of_kind(kind: HookKind) -> tuple[str, ...]:
    """The hooks of one kind, in declaration order."""
    return tuple(n for n, k in HOOK_KINDS.items() if k == kind)


# --------------------------------------------------------------------------------------------
# registration
# --------------------------------------------------------------------------------------------


@golf_hook("registration")
def golf_register(register: Callable[["TechniqueInfo"], None]) -> None:
    """Declare this plugin's technique.

    Called once when the plugin is loaded. Call ``register(TechniqueInfo(...))`` exactly once
    with the plugin's name (equal to its entry-point name), its ``Options`` model, lineage
    PRs, legality track, conflicts and whether the artifact needs it to be rebuilt.

    :param register: callable taking one ``golf_core.TechniqueInfo``.
    :return: nothing.
    """


@golf_hook("registration")
def golf_register_commands(subparsers: "argparse._SubParsersAction") -> None:
    """Add sub-commands to the ``golf`` CLI.

    Called once while the ``golf`` argument parser is built.

    :param subparsers: the ``argparse`` sub-parsers object of ``golf``; call
        ``subparsers.add_parser(name, help=...)`` and ``set_defaults(func=handler)`` where
        ``handler(args) -> int`` returns the exit code.
    :return: nothing.
    """


# --------------------------------------------------------------------------------------------
# data and build
# --------------------------------------------------------------------------------------------


@golf_hook("exclusive")
def golf_make_loader(ctx: "RunContext", opts: "Options", purpose: str) -> Any:
    """Build the training-data loader; the core's default is the baseline's sequential
    ``TokenStream`` loader (``golf_core.data.loaders.SequentialLoader``).

    Called at the start of training, again after the compile warmup (the loader is re-created
    so warmup batches are replayed, as the records do), and when a plugin asks for calibration
    data (``purpose="calibration"``).

    :param ctx: the run context; ``ctx.data.train_files`` lists the training shards,
        ``ctx.rank``/``ctx.world_size`` the process's place.
    :param opts: this plugin's options.
    :param purpose: ``"train"`` or ``"calibration"``.
    :return: an object with ``next_batch(local_tokens, seq_len) -> (x, y)`` giving this rank's
        micro-batch of ``local_tokens`` tokens as int64 tensors of shape ``[B, seq_len]``, plus ``state_dict()`` and
        ``load_state_dict(state)`` so checkpoints resume on the same batches.
    """


@golf_hook("transform")
def golf_build_model(model: "nn.Module", ctx: "RunContext", opts: "Options") -> Optional["nn.Module"]:
    """Change the freshly built baseline model.

    Called after ``golf_core.model.GPT`` is built from ``[model]`` and before dtypes are
    restored and the model is moved to its device; called again, with the same options, when
    ``artifact.bin`` is decoded into a fresh model (so everything done here must depend only
    on the options and the model config, never on training). Attach to the model's named
    seams (``q_gain``, ``rotary``, ``attn.out_transform``, ``ln_scale``, ``skips``,
    ``mlp.activation``, ``schedule``); see ``golf_core.model``.

    :param model: the ``GPT`` instance returned by the previous transform.
    :return: the model to use (usually the same object), or ``None`` to keep it.
    """


@golf_hook("transform")
def golf_configure_optimizers(optimizers: "OptimizerSet", model: "nn.Module", ctx: "RunContext",
                              opts: "Options") -> Optional["OptimizerSet"]:
    """Change the optimizers.

    Called once after the core built the baseline's groups (Muon for block matrices, Adam for
    the embedding and for scalars and control tensors; ``golf_core.train.optim``).

    :param optimizers: a ``golf_core.train.optim.OptimizerSet`` (named torch optimizers, each
        group carrying ``base_lr``, plus ``grad_clip_norm``).
    :param model: the un-wrapped model being trained.
    :return: the ``OptimizerSet`` to use, or ``None`` to keep it.
    """


# --------------------------------------------------------------------------------------------
# training (outside the compiled graph)
# --------------------------------------------------------------------------------------------


@golf_hook("observer")
def golf_compile_warmup(model: "nn.Module", ctx: "RunContext",
                        opts: "Options") -> Optional[list[Callable[["nn.Module"], Callable[[], None]]]]:
    """Ask for extra compile-warmup passes (results collected).

    Called before the training clock starts. The core runs ``[train] warmup_steps`` steps
    as-is, then the same number again under each state returned here, then restores the
    model, optimizers and loader to where they were (the warmup is undone, as in the records).

    :return: a list of callables ``enter(model) -> exit`` where ``exit()`` undoes the state
        (e.g. depth recurrence returns one that turns looping on so both compiled graphs
        exist before the clock starts), or ``None``.
    """


@golf_hook("observer")
def golf_on_train_start(model: "nn.Module", ctx: "RunContext", opts: "Options") -> None:
    """The training clock is about to start.

    Called after the compile warmup was undone and before step 1. On a resume it is called
    after the model, optimizers, loader and clock were restored and *before*
    ``golf_load_state_dict`` hands each plugin its checkpointed state (so a plugin may
    initialize here and be overwritten there).

    :param model: the un-wrapped model.
    :return: nothing.
    """


@golf_hook("observer")
def golf_on_step_end(model: "nn.Module", progress: "TrainProgress", ctx: "RunContext", opts: "Options") -> None:
    """A training step finished (outside the compiled graph; keep it cheap).

    :param model: the un-wrapped model (e.g. for EMA, or to switch looping on).
    :param progress: ``golf_core.train.loop.TrainProgress`` with ``step`` (1-based, steps
        done), ``elapsed_s`` (timed training seconds), ``frac`` (elapsed over the usable
        budget, or step over iterations when no wallclock cap) and ``lr_mul``.
    :return: nothing.
    """


@golf_hook("observer")
def golf_on_train_end(model: "nn.Module", ctx: "RunContext", opts: "Options") -> None:
    """Training stopped (cap reached or iterations done).

    :param model: the un-wrapped model, before any pre-quant transform.
    :return: nothing.
    """


@golf_hook("observer")
def golf_state_dict(ctx: "RunContext", opts: "Options") -> Optional[dict[str, Any]]:
    """This plugin's state for a checkpoint (results collected).

    :return: a dict of tensors and plain values (e.g. the EMA weights), or ``None``.
    """


@golf_hook("observer")
def golf_load_state_dict(state: dict[str, Any], ctx: "RunContext", opts: "Options") -> None:
    """Restore what ``golf_state_dict`` returned when resuming.

    :param state: the dict this plugin returned at checkpoint time.
    :return: nothing.
    """


# --------------------------------------------------------------------------------------------
# pre-quant, quantize, compress
# --------------------------------------------------------------------------------------------


@golf_hook("transform")
def golf_pre_quant(model: "nn.Module", ctx: "RunContext", opts: "Options") -> Optional["nn.Module"]:
    """Change the trained weights before quantization.

    Called once after training (EMA swap, pre-quant TTT, rotations). Reading validation data
    here is only possible through ``ctx.read_validation(reason)``, which records the read and
    marks the run "trains on validation data".

    :return: the model to quantize, or ``None`` to keep it.
    """


@golf_hook("exclusive")
def golf_quantize(model: "nn.Module", ctx: "RunContext", opts: "Options") -> "QuantizedModel":
    """Quantize the model; the core's default is the baseline's per-row int8
    (``golf_core.quant.int8``).

    :return: a ``golf_core.quant.QuantizedModel``: a flat dict of tensors plus a JSON-able
        ``meta`` dict saying how to decode each entry.
    """


@golf_hook("exclusive")
def golf_dequantize(quantized: "QuantizedModel", ctx: "RunContext", opts: "Options") -> dict[str, "Tensor"]:
    """Decode a ``QuantizedModel`` read from ``artifact.bin`` into a float state dict; the
    core's default decodes every codec of ``golf_core.quant``.

    Implement it only when ``golf_quantize`` wrote something the core cannot decode (a
    rotation to undo, say); then declare ``required_on_load=True``.

    :return: ``dict[str, Tensor]`` ready for ``load_state_dict``.
    """


@golf_hook("exclusive")
def golf_compress(data: bytes, ctx: "RunContext", opts: "Options") -> tuple[str, bytes]:
    """Compress the serialized model; the core's default applies ``[artifact] byte_shuffle``
    and ``[artifact] compressor`` (zlib, lzma or brotli).

    :return: ``(codec_name, compressed_bytes)``; ``codec_name`` is stored in the artifact
        header and handed back to ``golf_decompress``.
    """


@golf_hook("exclusive")
def golf_decompress(codec: str, data: bytes, ctx: "RunContext", opts: "Options") -> bytes:
    """Invert ``golf_compress`` (implement the two together).

    :return: the serialized bytes.
    """


# --------------------------------------------------------------------------------------------
# eval
# --------------------------------------------------------------------------------------------


@golf_hook("transform")
def golf_on_artifact_load(model: "nn.Module", ctx: "RunContext", opts: "Options") -> Optional["nn.Module"]:
    """The model was rebuilt and its weights decoded from ``artifact.bin``.

    Called before any scoring (e.g. depth recurrence switches looping on).

    :return: the model to score, or ``None`` to keep it.
    """


@golf_hook("exclusive")
def golf_eval_adapt(model: "nn.Module", session: "EvalSession", ctx: "RunContext", opts: "Options") -> Any:
    """Score the validation stream, adapting at eval time; the core's default scores every
    window with the fixed model.

    The adapter never holds the raw validation tensor: it iterates
    ``session.windows()`` / ``session.chunks(n)`` (left to right), calls
    ``model.forward_hidden`` / ``model.compute_logits`` as it likes, and hands back the full
    logit (or log-probability) row of every scored position with ``session.score(batch,
    logits)``; the session computes the NLL itself. A batch's targets (``batch.y``) are read
    only after it is scored (``batch.context_y`` holds the context positions' targets). Tokens
    to train on come from ``session.update_tokens(chunk)``, which refuses targets not yet
    scored and writes the score/update ledger. Each target must be scored exactly once.

    :param session: a ``golf_core.eval.EvalSession``.
    :return: anything; the result is read from the session. Return ``True`` to say "handled".
    """


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


@golf_hook("observer")
def golf_summary(result: dict[str, Any], ctx: "RunContext", opts: "Options") -> None:
    """The run finished scoring.

    :param result: the dict that becomes ``result.json``; add keys under your plugin's name.
    :return: nothing.
    """
