"""Third-party style adversarial plugins for ``golf check`` (tests/test_check_adversarial.py
copies this file out of the repository and registers its classes in-process; the audit
processes import them from there). Each is one way to break a rule, by class of the cheats that
got past the earlier check (issue 15): 1 validation data read from disk, 2 telling the audit
from the run, 3 leaks only late or only in wide batches, 4 noise that widens tolerance, 5
normalization, 6 leaks only at rare boundaries, 7 targets read from the batch before scoring.
Honest adapters sit beside them."""
from __future__ import annotations

import glob
import os

import numpy as np
import torch

from golf_core import NoOptions, TechniqueInfo, hookimpl

HEADER = 256 * 4
_RUNS = {"n": 0}


def _info(name: str, what: str) -> TechniqueInfo:
    return TechniqueInfo(name=name, options=NoOptions, summary=f"adversary: {what}", legality="score-first")


def logits_of(model, b) -> torch.Tensor:
    with torch.no_grad():
        return model.forward_logits(b.x).float()


def peek_bonus(z: torch.Tensor, x: torch.Tensor, bonus: float, where: torch.Tensor = None) -> torch.Tensor:
    """+bonus on the logit of the next input token (= this position's target, read ahead)."""
    nxt = torch.roll(x, -1, dims=1)
    add = torch.zeros_like(z).scatter_(2, nxt.unsqueeze(-1), bonus)
    add[:, -1] = 0.0
    if where is not None:
        add = add * where.unsqueeze(-1).to(add.dtype)
    return z + add


def val_tokens_from_disk(ctx) -> np.ndarray:
    """The validation stream straight off the shard files (the class-1 trick)."""
    files = sorted(ctx.data.val_files, key=lambda p: os.path.basename(str(p)))
    return np.concatenate([np.fromfile(str(f), dtype="<u2", offset=HEADER) for f in files])


class _Adapter:
    name = "?"
    what = "?"

    @hookimpl
    def golf_register(self, register):
        register(_info(self.name, self.what))


# -- honest -----------------------------------------------------------------------------------


class Honest(_Adapter):
    """The fixed model, every window scored as is (legal)."""

    name, what = "honest", "none (the fixed model)"

    @hookimpl
    def golf_eval_adapt(self, model, session):
        for b in session.windows():
            session.score(b, logits_of(model, b))
        return True


class HonestContextBias(_Adapter):
    """Per window, a unigram bias fitted on the window's own context targets (legal: causal)."""

    name, what = "honest-context-bias", "none (per-window bias from already-scored context)"

    @hookimpl
    def golf_eval_adapt(self, model, session):
        for b in session.windows():
            z = logits_of(model, b)
            ctx_y, cmask = b.context_y, ~b.score_mask
            for i in range(z.shape[0]):
                counts = torch.bincount(ctx_y[i][cmask[i]], minlength=z.shape[-1]).float()
                z[i] = z[i] + 0.1 * torch.log1p(counts)
            session.score(b, z)
        return True


# -- class 1: validation data read from disk ----------------------------------------------------


class DiskPeek(_Adapter):
    """Eval adapter that reads the val shard file itself and boosts the true next token."""

    name, what = "disk-peek", "np.fromfile on the val shard at eval time"

    @hookimpl
    def golf_eval_adapt(self, model, session, ctx):
        stream = torch.from_numpy(val_tokens_from_disk(ctx).astype(np.int64))
        for b in session.windows():
            z = logits_of(model, b)
            pos = b.target_pos.clamp(min=0) + 1
            truth = stream[pos.clamp(max=stream.numel() - 1)].to(z.device)
            z = z + 1.0 * torch.zeros_like(z).scatter_(2, truth.unsqueeze(-1), 1.0)
            session.score(b, z)
        return True


class DiskPrequant:
    """Pre-quant transform that reads the val shard with np.fromfile and nudges the embedding of
    its frequent tokens."""

    @hookimpl
    def golf_register(self, register):
        register(TechniqueInfo(name="disk-prequant", options=NoOptions, summary="adversary: val from disk in pre-quant",
                               legality="fixed-predictor"))

    @hookimpl
    def golf_pre_quant(self, model, ctx):
        counts = np.bincount(val_tokens_from_disk(ctx), minlength=ctx.recipe.data.vocab_size)
        top = torch.from_numpy(np.argsort(-counts)[:32].copy())
        with torch.no_grad():
            model.tok_emb.weight[top] *= 1.05
        return model


class MemmapPrequant:
    """Pre-quant transform that globs the dataset folder and memory-maps the val shard."""

    @hookimpl
    def golf_register(self, register):
        register(TechniqueInfo(name="memmap-prequant", options=NoOptions, summary="adversary: np.memmap of val",
                               legality="fixed-predictor"))

    @hookimpl
    def golf_pre_quant(self, model, ctx):
        path = sorted(glob.glob(os.path.join(str(ctx.data.dataset_dir), "*val*.bin")))[0]
        toks = np.memmap(path, dtype="<u2", mode="r", offset=HEADER)
        with torch.no_grad():
            model.tok_emb.weight[int(toks[1])] += 0.01
        return model


# -- class 2: behave in the audit, cheat in the run ----------------------------------------------


class FirstRunOnly(_Adapter):
    """Peeks only in the first run of its process (the old audit re-ran later in the same process)."""

    name, what = "first-run-only", "peeks in the first run of a process only"

    @hookimpl
    def golf_eval_adapt(self, model, session):
        _RUNS["n"] += 1
        cheat = _RUNS["n"] == 1
        for b in session.windows():
            z = logits_of(model, b)
            session.score(b, peek_bonus(z, b.x, 2.0) if cheat else z)
        return True


class OutDirOnly(_Adapter):
    """Peeks only when the run has an output folder (the old flip runs had none)."""

    name, what = "out-dir-only", "peeks when ctx.out_dir is set"

    @hookimpl
    def golf_eval_adapt(self, model, session, ctx):
        cheat = ctx.out_dir is not None
        for b in session.windows():
            z = logits_of(model, b)
            session.score(b, peek_bonus(z, b.x, 2.0) if cheat else z)
        return True


class FullStreamOnly(_Adapter):
    """Peeks only when the stream holds at least 8 windows (the old flip stream was shorter)."""

    name, what = "full-stream-only", "peeks on long streams only"

    @hookimpl
    def golf_eval_adapt(self, model, session):
        cheat = session.total_targets >= 8 * session.seq_len
        for b in session.windows():
            z = logits_of(model, b)
            session.score(b, peek_bonus(z, b.x, 2.0) if cheat else z)
        return True


# -- class 3: a leak that starts late, or only in wide batches ------------------------------------


class LatePeek(_Adapter):
    """Peeks only at targets in the last fifth of the stream."""

    name, what = "late-peek", "peeks in the last 20% of the stream"

    @hookimpl
    def golf_eval_adapt(self, model, session):
        start = int(session.total_targets * 0.8)
        for b in session.windows():
            z = logits_of(model, b)
            session.score(b, peek_bonus(z, b.x, 2.0, (b.target_pos >= start).to(z.device)))
        return True


class WideBatchPeek(_Adapter):
    """Peeks only when a batch holds at least 6 windows (more than --tiny's batches)."""

    name, what = "wide-batch-peek", "peeks when a batch holds >= 6 windows"

    @hookimpl
    def golf_eval_adapt(self, model, session):
        for b in session.windows():
            z = logits_of(model, b)
            session.score(b, peek_bonus(z, b.x, 2.0) if b.x.shape[0] >= 6 else z)
        return True


# -- class 4: noise that widens the tolerance -----------------------------------------------------


class NoisyPeek(_Adapter):
    """Fresh random noise (1e-3) on every logit, run to run, plus a 0.01 peek under it."""

    name, what = "noisy-peek", "random logit noise 1e-3 hiding a 0.01 peek"

    @hookimpl
    def golf_eval_adapt(self, model, session):
        g = torch.Generator().manual_seed(int.from_bytes(os.urandom(4), "little"))
        for b in session.windows():
            z = logits_of(model, b)
            z = z + 1e-3 * torch.randn(z.shape, generator=g)
            session.score(b, peek_bonus(z, b.x, 0.01))
        return True


class FaintNoisyPeek(_Adapter):
    """Noise of 2e-6 (tolerance 10x that, under the cap) and a 5e-3 peek."""

    name, what = "faint-noisy-peek", "random logit noise 2e-6 hiding a 5e-3 peek"

    @hookimpl
    def golf_eval_adapt(self, model, session):
        g = torch.Generator().manual_seed(int.from_bytes(os.urandom(4), "little"))
        for b in session.windows():
            z = logits_of(model, b).double()
            z = z + 2e-6 * torch.randn(z.shape, generator=g, dtype=torch.float64)
            session.score(b, peek_bonus(z, b.x, 5e-3))
        return True


# -- class 5: normalization ------------------------------------------------------------------------


class TargetBonusSometimes(_Adapter):
    """Adds a bonus to the target's logit in every third batch (reads batch.y to do so)."""

    name, what = "target-bonus-sometimes", "unnormalized bonus on the target, every third batch"

    @hookimpl
    def golf_eval_adapt(self, model, session):
        for i, b in enumerate(session.windows(2)):
            z = logits_of(model, b)
            if i % 3 == 2:
                z = z + torch.zeros_like(z).scatter_(2, b.y.unsqueeze(-1), 1.0)
            session.score(b, z)
        return True


class DropColumns(_Adapter):
    """Hands back rows without the rarest token ids (a distribution over part of the vocabulary)."""

    name, what = "drop-columns", "rows cover part of the vocabulary"

    @hookimpl
    def golf_eval_adapt(self, model, session):
        for b in session.windows():
            z = logits_of(model, b)
            session.score(b, z[..., : z.shape[-1] - 8])
        return True


class NaNSometimes(_Adapter):
    """A row that is not a distribution (NaN) in one batch."""

    name, what = "nan-rows", "a non-finite row in one batch"

    @hookimpl
    def golf_eval_adapt(self, model, session):
        for i, b in enumerate(session.windows()):
            z = logits_of(model, b)
            if i == 1:
                z[0, -1, 0] = float("nan")
            session.score(b, z)
        return True


# -- class 6: leaks at rare positions only ---------------------------------------------------------


class DocStartPeek(_Adapter):
    """Peeks only at a document's first token (x == BOS)."""

    name, what = "doc-start-peek", "peeks right after BOS only"

    @hookimpl
    def golf_eval_adapt(self, model, session):
        for b in session.windows():
            z = logits_of(model, b)
            session.score(b, peek_bonus(z, b.x, 3.0, b.x == 1))
        return True


class WindowEdgePeek(_Adapter):
    """Peeks only at the first scored position of a window."""

    name, what = "window-edge-peek", "peeks at a window's first scored position only"

    @hookimpl
    def golf_eval_adapt(self, model, session):
        for b in session.windows():
            z = logits_of(model, b)
            m = b.score_mask
            first = m & ~torch.roll(m, 1, dims=1)
            session.score(b, peek_bonus(z, b.x, 3.0, first))
        return True


# -- class 7: not-yet-scored targets read from the batch --------------------------------------------


class BatchYFit(_Adapter):
    """Fits a logit bias on the batch's own targets (batch.y), then scores them."""

    name, what = "batch-y-fit", "bias fitted on batch.y before scoring"

    @hookimpl
    def golf_eval_adapt(self, model, session):
        for b in session.windows():
            z = logits_of(model, b)
            counts = torch.bincount(b.y[b.score_mask], minlength=z.shape[-1]).float()
            session.score(b, z + 0.5 * torch.log1p(counts))
        return True


class BatchXFit(_Adapter):
    """Fits a bias on every input token of the batch (later windows' inputs are earlier windows'
    unscored targets), then scores."""

    name, what = "batch-x-fit", "bias fitted on the whole batch's inputs"

    @hookimpl
    def golf_eval_adapt(self, model, session):
        for b in session.windows():
            z = logits_of(model, b)
            counts = torch.bincount(b.x.reshape(-1), minlength=z.shape[-1]).float()
            session.score(b, z + 0.5 * torch.log1p(counts))
        return True


class SessionTokens(_Adapter):
    """Reads the session's private stream for the next target."""

    name, what = "session-tokens", "reads session._tokens"

    @hookimpl
    def golf_eval_adapt(self, model, session):
        toks = session._tokens
        for b in session.windows():
            z = logits_of(model, b)
            truth = toks[(b.target_pos.clamp(min=0) + 1)].to(z.device)
            session.score(b, z + torch.zeros_like(z).scatter_(2, truth.unsqueeze(-1), 1.0))
        return True


# -- document order (the LoRA TTT records' evaluation) --------------------------------------------


def _doc_rows(session, doc, width=64):
    """One document's targets as rows of at most ``width`` (each row its own window, no context)."""
    lo, hi = doc.target_lo, doc.target_hi
    starts = list(range(lo, hi, width))
    lens = [min(width, hi - a) for a in starts]
    return session.span_batch(starts, lens, starts, [a + n for a, n in zip(starts, lens)], width=width)


class HonestDocOrder(_Adapter):
    """Declares #1530's length order and scores every document on its own with the fixed model (legal)."""

    name, what = "honest-doc-order", "none (fixed model, documents in length order)"

    @hookimpl
    def golf_eval_adapt(self, model, session):
        from golf_core.api import length_order

        groups = length_order(session.documents(), 4)
        session.declare_order(groups)
        for g in groups:
            for d in g:
                b = _doc_rows(session, d)
                session.score(b, logits_of(model, b))
        return True


class DocUpdateFirst(_Adapter):
    """Document-wise TTT that adapts on a document before scoring it (update before score)."""

    name, what = "doc-update-first", "asks for a document's tokens before scoring it"

    @hookimpl
    def golf_eval_adapt(self, model, session):
        from golf_core.api import length_order

        groups = length_order(session.documents(), 4)
        session.declare_order(groups)
        for g in groups:
            for d in g:
                session.update_tokens((d.target_lo, d.target_hi), local=True)
                b = _doc_rows(session, d)
                session.score(b, logits_of(model, b))
        return True


class DocRowPeek(_Adapter):
    """Declares the length order, then scores each document row by row, biased toward the tokens
    of the document's next row (its inputs, read before they are scored)."""

    name, what = "doc-row-peek", "reads a document's next row before scoring this one"

    @hookimpl
    def golf_eval_adapt(self, model, session):
        from golf_core.api import length_order

        groups = length_order(session.documents(), 4)
        session.declare_order(groups)
        for g in groups:
            for d in g:
                b = _doc_rows(session, d)
                z = logits_of(model, b)
                nxt = torch.roll(b.x, -1, dims=0)
                nxt[-1] = 0
                counts = torch.stack([torch.bincount(r, minlength=z.shape[-1]) for r in nxt]).float()
                session.score(b, z + 0.5 * torch.log1p(counts)[:, None, :])
        return True


ADAPTERS = [Honest, HonestContextBias, DiskPeek, FirstRunOnly, OutDirOnly, FullStreamOnly, LatePeek, WideBatchPeek,
            NoisyPeek, FaintNoisyPeek, TargetBonusSometimes, DropColumns, NaNSometimes, DocStartPeek, WindowEdgePeek,
            BatchYFit, BatchXFit, SessionTokens, HonestDocOrder, DocUpdateFirst, DocRowPeek]
PREQUANT = {"disk-prequant": DiskPrequant, "memmap-prequant": MemmapPrequant}


# -- pre-quant reads through the context (run-directory tests) --------------------------------------


def _nudge(model, tokens):
    with torch.no_grad():
        model.tok_emb.weight.mul_(1.0 + 1e-3 * float(tokens.double().mean()))
    return model


class ValNudge:
    """Pre-quant: reads validation data (recorded) and lets it change the weights."""

    @hookimpl
    def golf_register(self, register):
        register(TechniqueInfo(name="valnudge", options=NoOptions, summary="test: pre-quant tune on validation data"))

    @hookimpl
    def golf_pre_quant(self, model, ctx):
        return _nudge(model, ctx.read_validation("valnudge: test fine-tune on validation tokens"))


class Sneak:
    """Pre-quant: reads validation data through the private loader (unrecorded by a plain run)."""

    @hookimpl
    def golf_register(self, register):
        register(TechniqueInfo(name="sneak", options=NoOptions, summary="test: unrecorded validation read"))

    @hookimpl
    def golf_pre_quant(self, model, ctx):
        return _nudge(model, ctx._load_validation())


PREQUANT.update({"valnudge": ValNudge, "sneak": Sneak})
