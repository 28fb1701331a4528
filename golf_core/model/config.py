"""``GPTConfig``: the model's shape and init knobs, built from ``[model]`` plus the vocab size."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from golf_core.errors import RecipeError


@dataclass(frozen=True)
class GPTConfig:
    """Everything ``GPT`` needs to build the baseline (pg_core §4.1-4.2 defaults).

    ``vocab_size`` comes from ``[data] vocab_size``; every other field mirrors
    ``golf_core.config.ModelSection``. ``attention_backend``, ``dtype`` and ``fused_kernels`` are
    read by ``prepare_for_device``, not by ``GPT`` itself.
    """

    vocab_size: int = 1024
    num_layers: int = 9
    model_dim: int = 512
    num_heads: int = 8
    num_kv_heads: int = 4
    mlp_mult: float = 2.0
    tie_embeddings: bool = True
    rope_base: float = 10000.0
    logit_softcap: float = 30.0
    qk_gain_init: float = 1.5
    tied_embed_init_std: float = 0.005
    attention_backend: str = "auto"
    dtype: str = "auto"
    fused_kernels: str = "auto"

    def __post_init__(self) -> None:
        if self.vocab_size < 2 or self.num_layers < 1 or self.model_dim < 2:
            raise RecipeError(f"model: bad sizes vocab_size={self.vocab_size} num_layers={self.num_layers} model_dim={self.model_dim}")
        if self.num_heads < 1 or self.model_dim % self.num_heads:
            raise RecipeError(f"[model] model_dim {self.model_dim} is not divisible by num_heads {self.num_heads}")
        if self.num_kv_heads < 1 or self.num_heads % self.num_kv_heads:
            raise RecipeError(f"[model] num_heads {self.num_heads} is not divisible by num_kv_heads {self.num_kv_heads}")
        if self.head_dim % 2:
            raise RecipeError(f"[model] head dim {self.head_dim} must be even for RoPE")
        if self.mlp_hidden < 1:
            raise RecipeError(f"[model] mlp_mult {self.mlp_mult} gives an empty MLP")
        if self.logit_softcap <= 0:
            raise RecipeError(f"[model] logit_softcap must be positive, got {self.logit_softcap}")

    @classmethod
    def from_section(cls, section: Any, vocab_size: int) -> "GPTConfig":
        """Build from a ``ModelSection`` (or any object with its attributes) and the vocab size."""
        names = [f.name for f in dataclasses.fields(cls) if f.name != "vocab_size"]
        return cls(vocab_size=int(vocab_size), **{n: getattr(section, n) for n in names})

    @property
    def head_dim(self) -> int:
        """``model_dim // num_heads`` (64 in the baseline)."""
        return self.model_dim // self.num_heads

    @property
    def kv_dim(self) -> int:
        """``num_kv_heads * head_dim`` (256 in the baseline)."""
        return self.num_kv_heads * self.head_dim

    @property
    def mlp_hidden(self) -> int:
        """MLP width ``int(mlp_mult * model_dim)`` (1024 in the baseline, 2048 in #1394)."""
        return int(self.mlp_mult * self.model_dim)

    def to_dict(self) -> dict:
        """Plain JSON-able dict of the fields (for manifests and artifact headers)."""
        return dataclasses.asdict(self)
