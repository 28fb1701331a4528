"""Every hook a golf plugin can implement.

The core owns the sequence of phases (the run driver, ``golf_core.run.driver``); plugins change what a phase
does through these hooks. Hooks run at phase boundaries only, never inside the compiled
training step, so the model that trains is a plain ``nn.Module`` that torch.compile sees whole.

How the core calls a hook depends on its kind, written at the top of each docstring:

* **registration**: called on every *installed* plugin, so that ``golf plugins`` can list
  plugins that no recipe activates.
* **transform**: called once per active plugin, in the order of the recipe's ``plugins``
  list (never pluggy's registration order; ``tryfirst``/``trylast`` are refused). Each
  implementation receives the value the previous one returned; returning ``None`` keeps it.
* **exclusive**: at most one active plugin may implement it. None: the core's default runs.
  Two or more: the recipe fails validation, naming them.
* **observer**: called for every active plugin, in recipe order; return values are ignored.

Every hook except the registration hooks receives ``ctx`` (the ``RunContext`` of the run:
recipe, device, rank, stash, logs, clocks, the validation-read ledger) and ``opts`` (this
plugin's own validated ``Options`` instance from ``[options.<plugin>]``). Implementations may
declare only the arguments they use, as with pytest.
"""
from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("golf")
hookimpl = pluggy.HookimplMarker("golf")

# --------------------------------------------------------------------------------------------
# registration
# --------------------------------------------------------------------------------------------


@hookspec
def golf_register(register: Any) -> None:
    """Declare this plugin's technique. **Registration** (every installed plugin).

    Called once when the plugin is loaded. Call ``register(TechniqueInfo(...))`` exactly once
    with the plugin's name (equal to its entry-point name), its ``Options`` model, lineage
    PRs, legality track, conflicts and whether the artifact needs it to be rebuilt.

    :param register: callable taking one ``golf_core.TechniqueInfo``.
    :return: nothing.
    """


@hookspec
def golf_register_commands(subparsers: Any) -> None:
    """Add sub-commands to the ``golf`` CLI. **Registration** (every installed plugin).

    Called once while the ``golf`` argument parser is built.

    :param subparsers: the ``argparse`` sub-parsers object of ``golf``; call
        ``subparsers.add_parser(name, help=...)`` and ``set_defaults(func=handler)`` where
        ``handler(args) -> int`` returns the exit code.
    :return: nothing.
    """


# --------------------------------------------------------------------------------------------
# data and build
# --------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def golf_make_loader(ctx: Any, opts: Any, purpose: str) -> Any:
    """Build the training-data loader. **Exclusive**; the core's default is the baseline's
    sequential ``TokenStream`` loader (``golf_core.data.loaders.SequentialLoader``).

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


@hookspec
def golf_build_model(model: Any, ctx: Any, opts: Any) -> Any:
    """Change the freshly built baseline model. **Transform**, recipe order.

    Called after ``golf_core.model.GPT`` is built from ``[model]`` and before dtypes are
    restored and the model is moved to its device; called again, with the same options, when
    ``artifact.bin`` is decoded into a fresh model (so everything done here must depend only
    on the options and the model config, never on training). Attach to the model's named
    seams (``q_gain``, ``rotary``, ``attn.out_transform``, ``ln_scale``, ``skips``,
    ``mlp.activation``, ``schedule``); see ``golf_core.model``.

    :param model: the ``GPT`` instance returned by the previous transform.
    :return: the model to use (usually the same object), or ``None`` to keep it.
    """


@hookspec
def golf_configure_optimizers(optimizers: Any, model: Any, ctx: Any, opts: Any) -> Any:
    """Change the optimizers. **Transform**, recipe order.

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


@hookspec
def golf_compile_warmup(model: Any, ctx: Any, opts: Any) -> Any:
    """Ask for extra compile-warmup passes. **Observer** (results collected, recipe order).

    Called before the training clock starts. The core runs ``[train] warmup_steps`` steps
    as-is, then the same number again under each state returned here, then restores the
    model, optimizers and loader to where they were (the warmup is undone, as in the records).

    :return: a list of callables ``enter(model) -> exit`` where ``exit()`` undoes the state
        (e.g. depth recurrence returns one that turns looping on so both compiled graphs
        exist before the clock starts), or ``None``.
    """


@hookspec
def golf_on_train_start(model: Any, ctx: Any, opts: Any) -> None:
    """The training clock is about to start. **Observer**.

    Called after the compile warmup was undone and before step 1. On a resume it is called
    after the model, optimizers, loader and clock were restored and *before*
    ``golf_load_state_dict`` hands each plugin its checkpointed state (so a plugin may
    initialize here and be overwritten there).

    :param model: the un-wrapped model.
    :return: nothing.
    """


@hookspec
def golf_on_step_end(model: Any, progress: Any, ctx: Any, opts: Any) -> None:
    """A training step finished. **Observer**, outside the compiled graph; keep it cheap.

    :param model: the un-wrapped model (e.g. for EMA, or to switch looping on).
    :param progress: ``golf_core.train.loop.TrainProgress`` with ``step`` (1-based, steps
        done), ``elapsed_s`` (timed training seconds), ``frac`` (elapsed over the usable
        budget, or step over iterations when no wallclock cap) and ``lr_mul``.
    :return: nothing.
    """


@hookspec
def golf_on_train_end(model: Any, ctx: Any, opts: Any) -> None:
    """Training stopped (cap reached or iterations done). **Observer**.

    :param model: the un-wrapped model, before any pre-quant transform.
    :return: nothing.
    """


@hookspec
def golf_state_dict(ctx: Any, opts: Any) -> Any:
    """This plugin's state for a checkpoint. **Observer** (results collected).

    :return: a dict of tensors and plain values (e.g. the EMA weights), or ``None``.
    """


@hookspec
def golf_load_state_dict(state: Any, ctx: Any, opts: Any) -> None:
    """Restore what ``golf_state_dict`` returned when resuming. **Observer**.

    :param state: the dict this plugin returned at checkpoint time.
    :return: nothing.
    """


# --------------------------------------------------------------------------------------------
# pre-quant, quantize, compress
# --------------------------------------------------------------------------------------------


@hookspec
def golf_pre_quant(model: Any, ctx: Any, opts: Any) -> Any:
    """Change the trained weights before quantization. **Transform**, recipe order.

    Called once after training (EMA swap, pre-quant TTT, rotations). Reading validation data
    here is only possible through ``ctx.read_validation(reason)``, which records the read and
    marks the run "trains on validation data".

    :return: the model to quantize, or ``None`` to keep it.
    """


@hookspec(firstresult=True)
def golf_quantize(model: Any, ctx: Any, opts: Any) -> Any:
    """Quantize the model. **Exclusive**; the core's default is the baseline's per-row
    int8 (``golf_core.quant.int8``).

    :return: a ``golf_core.quant.QuantizedModel``: a flat dict of tensors plus a JSON-able
        ``meta`` dict saying how to decode each entry.
    """


@hookspec(firstresult=True)
def golf_dequantize(quantized: Any, ctx: Any, opts: Any) -> Any:
    """Decode a ``QuantizedModel`` read from ``artifact.bin`` into a float state dict.
    **Exclusive**; the core's default decodes every codec of ``golf_core.quant``.

    Implement it only when ``golf_quantize`` wrote something the core cannot decode (a
    rotation to undo, say); then declare ``required_on_load=True``.

    :return: ``dict[str, Tensor]`` ready for ``load_state_dict``.
    """


@hookspec(firstresult=True)
def golf_compress(data: bytes, ctx: Any, opts: Any) -> Any:
    """Compress the serialized model. **Exclusive**; the core's default applies
    ``[artifact] byte_shuffle`` and ``[artifact] compressor`` (zlib, lzma or brotli).

    :return: ``(codec_name, compressed_bytes)``; ``codec_name`` is stored in the artifact
        header and handed back to ``golf_decompress``.
    """


@hookspec(firstresult=True)
def golf_decompress(codec: str, data: bytes, ctx: Any, opts: Any) -> Any:
    """Invert ``golf_compress``. **Exclusive**, paired with ``golf_compress``.

    :return: the serialized bytes.
    """


# --------------------------------------------------------------------------------------------
# eval
# --------------------------------------------------------------------------------------------


@hookspec
def golf_on_artifact_load(model: Any, ctx: Any, opts: Any) -> Any:
    """The model was rebuilt and its weights decoded from ``artifact.bin``. **Transform**.

    Called before any scoring (e.g. depth recurrence switches looping on).

    :return: the model to score, or ``None`` to keep it.
    """


@hookspec(firstresult=True)
def golf_eval_adapt(model: Any, session: Any, ctx: Any, opts: Any) -> Any:
    """Score the validation stream, adapting at eval time. **Exclusive**; the core's default
    scores every window with the fixed model.

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


@hookspec
def golf_summary(result: Any, ctx: Any, opts: Any) -> None:
    """The run finished scoring. **Observer**.

    :param result: the dict that becomes ``result.json``; add keys under your plugin's name.
    :return: nothing.
    """
