"""The typed tables of a recipe: ``[meta]``, ``[data]``, ``[model]``, ``[train]``, ``[eval]``, ``[artifact]``.

Every default is the challenge's naive baseline (research/pg_core.md §4.1); a recipe changes
only what differs. Every table rejects unknown keys.
"""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Section(BaseModel):
    """Base of every recipe table: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class MetaSection(Section):
    """Provenance of a recipe."""

    source: str = Field("", description="where the configuration comes from, e.g. 'openai/parameter-golf PR #1394'")
    reported_val_bpb: Optional[float] = Field(None, description="the val_bpb its authors reported")
    model_params: Optional[int] = Field(None, ge=1, description="the parameter count the record's own train log reports (`model_params:`)")
    legality: str = Field("fixed-predictor", description="the legality track as the reviews judged it")
    date: Optional[str] = Field(None, pattern=r"^\d{4}-\d{2}-\d{2}$",
                                description="the record's date (YYYY-MM-DD, its records/ folder); `golf recipes` orders by it")
    code_bytes: Optional[int] = Field(None, ge=1, description="the record's counted code bytes (the size of its train_gpt.py); bench/code_bytes.py holds the compact script to it")
    notes: str = Field("", description="free text")


class CheckSection(Section):
    """What a recipe declares to ``golf check`` (golf_core.check)."""

    document_independent: bool = Field(False, description="the eval scores every document on its own: no score of document N+1 may move when document N changes (checked)")
    exempt: dict[str, str] = Field(default_factory=dict, description="rule id -> why it cannot apply; a rule that is not checked fails unless it is listed here")


class DataSection(Section):
    """Which shards and tokenizer a run reads (pg_core.md §2)."""

    source: Literal["demo", "fineweb"] = Field("demo", description="'demo' is built locally; 'fineweb' is downloaded by `golf data download`")
    vocab_size: int = Field(1024, ge=2, le=65536, description="tokenizer vocabulary size (data configuration, e.g. sp8192)")
    root: Optional[str] = Field(None, description="folder holding datasets/ and tokenizers/; default $GOLF_DATA_DIR or ~/.cache/golf/data (demo), ./data (fineweb)")
    dataset_dir: Optional[str] = Field(None, description="explicit shard folder, overriding root")
    tokenizer_path: Optional[str] = Field(None, description="explicit SentencePiece model, overriding root")
    train_shards: Optional[int] = Field(None, ge=1, description="use only the first N training shards")
    variant: Literal["plain", "caseops"] = Field(
        "plain", description="'caseops': the CaseOps tokenization (lossless case markers, PR #1729) with its "
                             "byte sidecar; scored on the original text's bytes")


class ModelSection(Section):
    """The baseline GPT's knobs (pg_core.md §4.2)."""

    num_layers: int = Field(9, ge=1)
    model_dim: int = Field(512, ge=8)
    num_heads: int = Field(8, ge=1)
    num_kv_heads: int = Field(4, ge=1)
    mlp_mult: float = Field(2.0, gt=0)
    tie_embeddings: bool = True
    rope_base: float = 10000.0
    logit_softcap: float = Field(30.0, gt=0)
    qk_gain_init: float = Field(1.5, description="initial per-head query gain (baseline 1.5)")
    tied_embed_init_std: float = 0.005
    attention_backend: Literal["auto", "flash3", "flash2", "sdpa"] = Field(
        "auto", description="auto: FlashAttention 3, then 2, when importable on a GPU, else torch SDPA")
    dtype: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="auto: the baseline's bf16 layout on GPU, float32 everywhere on CPU")
    fused_kernels: Literal["auto", "off"] = Field(
        "auto", description="auto: Triton fused kernels (softcapped CE, plugins' own) in training where Triton "
                            "runs on the GPU and a probe equals the plain-PyTorch maths; off: always the plain path")

    @model_validator(mode="after")
    def _heads_divide(self) -> "ModelSection":
        if self.model_dim % self.num_heads:
            raise ValueError(f"model_dim {self.model_dim} is not divisible by num_heads {self.num_heads}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads {self.num_heads} is not divisible by num_kv_heads {self.num_kv_heads}")
        if (self.model_dim // self.num_heads) % 2:
            raise ValueError("head dim must be even for RoPE")
        return self


class TrainSection(Section):
    """Training loop, schedule and optimizer settings (pg_core.md §4.1, §4.3-4.6)."""

    seed: int = 1337
    iterations: int = Field(20000, ge=0)
    max_wallclock_seconds: float = Field(600.0, ge=0, description="0 disables the cap")
    reserve_seconds: float = Field(0.0, ge=0, description="seconds of the cap kept for calibration (#1394: 12)")
    warmdown_iters: int = Field(1200, ge=0, description="baseline warmdown length in steps (time-based under a cap)")
    warmdown_frac: Optional[float] = Field(None, gt=0, le=1, description="#1394 style: linear decay over the last fraction of the clock; overrides warmdown_iters")
    min_lr: float = Field(0.0, ge=0, le=1, description="floor of the lr multiplier during the warmdown (#1787: 0.10)")
    warmup_steps: int = Field(20, ge=0, description="compile-warmup steps, undone before the clock starts")
    train_batch_tokens: int = Field(524288, ge=1)
    train_seq_len: int = Field(1024, ge=2)
    grad_accum_steps: Optional[int] = Field(None, ge=1, description="default 8 // world_size")
    embed_lr: float = 0.6
    head_lr: float = 0.008
    tied_embed_lr: float = 0.05
    matrix_lr: float = 0.04
    scalar_lr: float = 0.04
    muon_momentum: float = 0.95
    muon_backend_steps: int = 5
    muon_momentum_warmup_start: float = 0.85
    muon_momentum_warmup_steps: int = 500
    muon_arithmetic: Literal["per-matrix", "banks", "banks-first"] = Field(
        "per-matrix", description="per-matrix: the baseline's and #1394's Muon rounding; banks: the #1019 lineage's "
        "Parallel Muon over parameter banks (#1229, #1306, #1423): bf16 momentum, c*(A@A), scale in the step size, "
        "clip norm per bank in the record's parameter order; banks-first: the same arithmetic with the banks as the "
        "model's first parameters in the clip order (#1529, #1530 and later register them before their other tensors)")
    beta1: float = 0.9
    beta2: float = 0.95
    adam_eps: float = 1e-8
    adam_wd: float = 0.0
    embed_wd: float = 0.0
    grad_clip_norm: float = 0.0
    compile: Literal["auto", "on", "off"] = Field("auto", description="auto: on for CUDA, off on CPU")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N")
    cpu_threads: int = Field(
        1, ge=0, description="torch intra-op threads when running on the CPU; 0 keeps torch's default. "
        "1 because golf's CPU models are small: on 2 cores with any other load, 2 OpenMP threads ran the "
        "demo 5x slower (8.4 vs 1.65 s/step)")
    log_every: int = Field(200, ge=0)
    val_loss_every: int = Field(1000, ge=0, description="in-loop validation (clock paused); 0: only at the end")
    checkpoint_every: int = Field(0, ge=0, description="save a resumable checkpoint every N steps; 0: never")


class EvalSection(Section):
    """Scoring settings (pg_core.md §3.4). ``stride`` unset: non-overlapping windows."""

    seq_len: int = Field(1024, ge=2)
    stride: Optional[int] = Field(None, ge=1, description="sliding-window stride; unset or equal to seq_len: non-overlapping")
    batch_tokens: int = Field(524288, ge=1, description="validation tokens per batch across ranks")
    max_tokens: Optional[int] = Field(None, ge=2, description="truncate the validation stream (tests, --tiny); unset: the whole set")

    @model_validator(mode="after")
    def _stride_fits(self) -> "EvalSection":
        if self.stride is not None and self.stride > self.seq_len:
            raise ValueError(f"stride {self.stride} is larger than seq_len {self.seq_len}")
        return self


class ArtifactSection(Section):
    """Byte accounting and the compressed container (pg_core.md §1, §4.7, §5.8)."""

    cap_bytes: int = Field(16_000_000, ge=1, description="code + compressed model bytes must not exceed this")
    compressor: Literal["zlib", "lzma", "brotli"] = "zlib"
    byte_shuffle: bool = Field(False, description="BSHF stride-2 byte shuffle before compression")
