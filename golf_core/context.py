"""RunContext: what every phase and every hook gets about the run in progress."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional

import torch

from .errors import GolfError
from .recipe import Recipe
from .rundir import RunLog
from .stash import Stash

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from .data.paths import DataPaths
    from .data.tokenizer import ByteLuts
    from .plugins import ActivePlugins
    from .services import RunServices


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> the local CUDA device when available, else CPU."""
    if spec == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    dev = torch.device(spec)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local_rank)
    return dev


class NoServices:
    """``ctx.services`` of a context the run driver did not make: every service is a one-line error."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise GolfError(f"ctx.services.{name}: this RunContext has no run services (it was not made by "
                        "golf_core.run.make_context); attach them with golf_core.services.attach(ctx)")


@dataclass
class RunContext:
    """The run in progress: recipe, plugins, device and ranks, logs, stash, legality ledger,
    the phase and the plugin whose hook is running."""

    recipe: Recipe
    plugins: "ActivePlugins"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    out_dir: Optional[Path] = None
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    log: RunLog = field(default_factory=lambda: RunLog(None))
    stash: Stash = field(default_factory=Stash)
    phase: str = "setup"
    current_plugin: Optional[str] = None
    validation_reads: list[dict[str, Any]] = field(default_factory=list)
    #: What the run driver offers plugins (code bytes, compression, artifact packing, loaders):
    #: a ``golf_core.services.RunServices``.
    services: "RunServices | NoServices" = field(default_factory=NoServices)
    _data: Optional["DataPaths"] = None
    _luts: Optional["ByteLuts"] = None

    @property
    def tiny(self) -> bool:
        """True when the recipe was resolved with ``--tiny``."""
        return self.recipe.tiny

    @property
    def is_main(self) -> bool:
        """True on rank 0."""
        return self.rank == 0

    @property
    def dtype(self) -> torch.dtype:
        """The compute dtype: bf16 on CUDA under ``[model] dtype = auto|bf16``, else float32."""
        d = self.recipe.model.dtype
        if d == "bf16" or (d == "auto" and self.device.type == "cuda"):
            return torch.bfloat16
        return torch.float32

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA when the dtype is bf16; a no-op otherwise."""
        if self.dtype == torch.bfloat16 and self.device.type == "cuda":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @property
    def data(self) -> "DataPaths":
        """Paths of the run's shards and tokenizer (the demo is built when missing)."""
        if self._data is None:
            from .data.paths import resolve_data

            self._data = resolve_data(self.recipe.data, build_missing=True)
        return self._data

    @property
    def luts(self) -> "ByteLuts":
        """The byte lookup tables of the run's tokenizer (pg_core.md §3.1)."""
        if self._luts is None:
            from .data.tokenizer import build_byte_luts, load_tokenizer

            sp = load_tokenizer(self.data.tokenizer_path, vocab_size=self.recipe.data.vocab_size)
            self._luts = build_byte_luts(sp, self.recipe.data.vocab_size)
        return self._luts

    def validation_bytes(self, num_tokens: int) -> Optional["np.ndarray"]:
        """The original bytes of the first ``num_tokens`` validation tokens from the dataset's byte
        sidecar (CaseOps), or None where the byte tables count them; DataError for a CaseOps
        tokenizer without a sidecar (the tables would count each case marker as 3 bytes)."""
        data = self.data
        if not data.val_byte_files:
            from .data.caseops import is_caseops_tokenizer
            from .data.tokenizer import load_tokenizer
            from .errors import DataError

            if is_caseops_tokenizer(load_tokenizer(data.tokenizer_path)):
                raise DataError(f"{data.dataset_dir}: a CaseOps tokenizer but no byte sidecars "
                                f"(fineweb_val_bytes_*.bin); BPB needs the original bytes of each token")
            return None
        from .data.validation import load_validation_bytes

        return load_validation_bytes(data.val_byte_files, num_tokens)

    def read_validation(self, reason: str) -> torch.Tensor:
        """The validation token stream, for a plugin outside the eval phase.

        The read is recorded (phase, reason, token count) and puts the run on the
        "trains on validation data" track in ``result.json``.
        """
        tokens = self._load_validation()
        self.validation_reads.append({"phase": self.phase, "reason": reason, "tokens": int(tokens.numel())})
        self.log.info(f"legality:validation_read phase:{self.phase} reason:{reason}")
        return tokens

    def _load_validation(self) -> torch.Tensor:
        from .data.validation import load_validation_tokens

        ev = self.recipe.eval
        return load_validation_tokens(self.data.val_files, ev.seq_len, max_tokens=ev.max_tokens)

    @contextlib.contextmanager
    def in_phase(self, phase: str) -> Iterator[None]:
        """Set ``ctx.phase`` for the duration of a block."""
        prev, self.phase = self.phase, phase
        try:
            yield
        finally:
            self.phase = prev

    @contextlib.contextmanager
    def in_plugin(self, name: Optional[str]) -> Iterator[None]:
        """Set ``ctx.current_plugin`` (the plugin whose hook runs; ``None``: the core) for a block;
        the plugin manager wraps every hook call in it."""
        prev, self.current_plugin = self.current_plugin, name
        try:
            yield
        finally:
            self.current_plugin = prev
