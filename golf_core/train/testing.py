"""Stand-ins for exercising ``golf_core.train`` without the pipeline (tests, benches, plugins' tests).

* :func:`synthetic_shards` writes learnable token shards (a fixed random bigram chain) in the
  challenge's format, so the core's default loader reads them;
* :func:`make_train_context` builds a real ``RunContext`` around a recipe, in-process plugin
  objects and those shards, without data building, tokenizers or a run folder;
* :class:`RecordingLog` keeps log lines and metric events in memory.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from ..context import RunContext
from ..hookspecs import hookimpl
from ..data.paths import DataPaths
from ..data.shards import write_shard
from ..plugins import PluginRegistry, activate
from ..recipe import Recipe
from ..technique import TechniqueInfo
from . import distributed as D


def bigram_tokens(n: int, vocab_size: int, seed: int = 0, branching: int = 4) -> np.ndarray:
    """``n`` tokens of a random chain where each token has ``branching`` likely successors."""
    rng = np.random.default_rng(seed)
    succ = rng.integers(0, vocab_size, size=(vocab_size, branching))
    out = np.empty(n, dtype=np.int64)
    cur = int(rng.integers(vocab_size))
    choices = rng.integers(0, branching, size=n)
    noise = rng.random(n) < 0.05
    rand = rng.integers(0, vocab_size, size=n)
    for i in range(n):
        out[i] = cur
        cur = int(rand[i]) if noise[i] else int(succ[cur, choices[i]])
    return out


def synthetic_shards(folder: Path, vocab_size: int, train_tokens: int = 60_000, val_tokens: int = 8_193,
                     num_train_shards: int = 2, seed: int = 0) -> DataPaths:
    """Write train/val shards of :func:`bigram_tokens` into ``folder``; return their DataPaths."""
    folder = Path(folder)
    toks = bigram_tokens(train_tokens + val_tokens, vocab_size, seed=seed)
    train, val = toks[:train_tokens], toks[train_tokens:]
    files = []
    for i, part in enumerate(np.array_split(train, num_train_shards)):
        files.append(write_shard(folder / f"fineweb_train_{i:06d}.bin", part))
    vfile = write_shard(folder / "fineweb_val_000000.bin", val)
    return DataPaths(dataset_dir=folder, tokenizer_path=folder / "none.model", train_files=files,
                     val_files=[vfile], name="synthetic", vocab_size=vocab_size)


class RecordingLog:
    """A ``RunLog`` stand-in that keeps ``info`` lines and ``metric`` events in lists."""

    def __init__(self, echo: bool = False) -> None:
        self.lines: list[str] = []
        self.events: list[dict[str, Any]] = []
        self.echo = echo
        self.printer = print

    def info(self, msg: str) -> None:
        """Keep one human line."""
        self.lines.append(msg)
        if self.echo:
            self.printer(msg)

    def metric(self, **kv: Any) -> None:
        """Keep one event."""
        self.events.append(dict(kv))

    def close(self) -> None:
        """Nothing to close."""


def make_train_context(
    recipe: Recipe,
    plugins: Sequence[tuple[str, Any]] = (),
    *,
    data: Optional[DataPaths] = None,
    out_dir: Optional[Path] = None,
    device: str = "cpu",
    log: Any = None,
) -> RunContext:
    """A RunContext for ``recipe`` with the given in-process plugins ``[(name, obj), ...]``.

    The plugins are activated in the order given (it becomes ``recipe.plugins``); rank and
    world size come from torch.distributed when it is initialized.
    """
    reg = PluginRegistry()
    for name, obj in plugins:
        reg.add(name, obj)
    recipe = recipe.model_copy(deep=True)
    recipe.plugins = [name for name, _ in plugins]
    ap = activate(recipe, reg)
    ctx = RunContext(recipe=recipe, plugins=ap, device=torch.device(device), out_dir=out_dir,
                     rank=D.get_rank(), world_size=D.get_world_size(), local_rank=D.get_rank(),
                     log=log if log is not None else RecordingLog())
    if data is not None:
        ctx._data = data
    from ..services import attach  # a test context offers the run's services too

    return attach(ctx)


def tiny_recipe(vocab_size: int = 64, model: Optional[dict[str, Any]] = None, **train: Any) -> Recipe:
    """A recipe with a tiny model (2 layers, width 32) and CPU-sized training; ``train`` overrides
    ``[train]`` keys (defaults: 6 steps of 2,048 tokens, seq 32, no cap, no warmup, no compile)."""
    tr: dict[str, Any] = dict(iterations=6, max_wallclock_seconds=0.0, warmup_steps=0, warmdown_iters=3,
                              train_batch_tokens=2048, train_seq_len=32, compile="off", device="cpu",
                              log_every=1, val_loss_every=0)
    tr.update(train)
    md: dict[str, Any] = dict(num_layers=2, model_dim=32, num_heads=4, num_kv_heads=2, dtype="fp32",
                              attention_backend="sdpa")
    md.update(model or {})
    return Recipe.model_validate({"data": {"vocab_size": vocab_size}, "model": md, "train": tr})


def build_model(ctx: RunContext, seed: Optional[int] = None) -> torch.nn.Module:
    """The model a run builds for ``ctx.recipe`` (plugins' ``golf_build_model`` applied, laid out on
    ``ctx.device``; ``golf_core.run.build_model``), after ``torch.manual_seed(seed)`` when given."""
    from ..run.build import build_model as run_build_model

    if seed is not None:
        torch.manual_seed(seed)
    return run_build_model(ctx.recipe, ctx.plugins, ctx)


def heldout_loss(model: torch.nn.Module, data: DataPaths, seq_len: int, max_seqs: int = 64) -> float:
    """Mean next-token loss of ``model`` on the first ``max_seqs`` sequences of the val shards."""
    from ..data.loaders import shard_tokens

    toks = np.concatenate([np.asarray(shard_tokens(f), dtype=np.int64) for f in data.val_files])
    n = min(max_seqs, (len(toks) - 1) // seq_len) * seq_len
    x = torch.from_numpy(toks[:n].copy()).view(-1, seq_len)
    y = torch.from_numpy(toks[1 : n + 1].copy()).view(-1, seq_len)
    was = model.training
    model.eval()
    with torch.no_grad():
        loss = float(model(x, y))
    model.train(was)
    return loss


def flat_params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached float64 CPU copy of every parameter and buffer, by name."""
    return {k: v.detach().to("cpu", torch.float64).clone() for k, v in model.state_dict().items()}


def max_abs_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest absolute difference between two :func:`flat_params` dicts with the same keys."""
    if set(a) != set(b):
        raise ValueError(f"different keys: {sorted(set(a) ^ set(b))[:3]}")
    return max((a[k] - b[k]).abs().max().item() if a[k].numel() else 0.0 for k in a)



class CrashAt:
    """An in-process test plugin: notes when the clock starts and raises ``RuntimeError("simulated
    crash")`` at the end of step ``crash_at`` (a crash after that step's checkpoint)."""

    def __init__(self, crash_at: Optional[int] = None, name: str = "crash-at"):
        self.crash_at, self.name, self.started = crash_at, name, False

    @hookimpl
    def golf_register(self, register: Any) -> None:
        """Register as a technique without options."""
        register(TechniqueInfo(name=self.name))

    @hookimpl
    def golf_on_train_start(self) -> None:
        """The timed loop begins."""
        self.started = True

    @hookimpl
    def golf_on_step_end(self, progress: Any) -> None:
        """Crash at the requested step."""
        if self.crash_at is not None and progress.step == self.crash_at:
            raise RuntimeError("simulated crash")


def assert_loader_resumes(loader_cls: type, name: str, plugin: Any, data: DataPaths, tmp_path: Path,
                          monkeypatch: Any, iterations: int = 9, every: int = 3) -> None:
    """A run with loader plugin ``name`` crashed after a checkpoint and resumed reads exactly the
    micro-batches of an uninterrupted run from the checkpoint on, and ends on identical weights."""
    from .loop import train

    def run(out_dir: Path, crash_at: Optional[int] = None, resume: Optional[Path] = None):
        batches: list[torch.Tensor] = []
        spy = CrashAt(crash_at)
        orig = loader_cls.next_batch

        def recording(self: Any, local_tokens: int, seq_len: int):
            x, y = orig(self, local_tokens, seq_len)
            if spy.started:
                batches.append(x.clone())
            return x, y

        monkeypatch.setattr(loader_cls, "next_batch", recording)
        recipe = tiny_recipe(iterations=iterations, checkpoint_every=every, warmup_steps=1, train_batch_tokens=1024)
        ctx = make_train_context(recipe, [(name, plugin), (spy.name, spy)], data=data, out_dir=out_dir)
        model = build_model(ctx, seed=0)
        try:
            res = train(model, ctx, resume_from=resume)
        finally:
            monkeypatch.setattr(loader_cls, "next_batch", orig)
        return model, res, batches

    m_full, r_full, full = run(tmp_path / "full")
    accum = r_full.grad_accum_steps
    assert len(full) == iterations * accum
    crash = 2 * every + 1
    try:
        run(tmp_path / "crashed", crash_at=crash)
    except RuntimeError as e:
        assert "simulated crash" in str(e)
    else:  # pragma: no cover - the crash must happen
        raise AssertionError("the simulated crash did not happen")
    m_res, r_res, resumed = run(tmp_path / "crashed", resume=tmp_path / "crashed")
    assert r_res.resumed_step == 2 * every and r_res.steps == iterations
    assert len(resumed) == (iterations - 2 * every) * accum
    for i, (a, b) in enumerate(zip(full[2 * every * accum:], resumed)):
        assert torch.equal(a, b), f"micro-batch {2 * every * accum + i} differs after resume"
    assert max_abs_diff(flat_params(m_full), flat_params(m_res)) == 0.0
