"""Options of the ``gptq`` plugin (GPTQ, calibration, budget fit, and the optional Hadamard rotation)."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from golf_core import Options


class GPTQOptions(Options):
    """GPTQ with SDClip; defaults are #1394's."""

    bits: int = Field(6, ge=2, le=8, description="bits of the block matrices (int6: codes in ±31)")
    clip_sigmas: float = Field(12.85, gt=0, description="SDClip multiplier k of the matrices: step = k*std(row)/(2^(b-1)-1)")
    embed_bits: int = Field(8, ge=2, le=8, description="bits of the tied embedding")
    embed_clip_sigmas: float = Field(20.0, gt=0, description="SDClip multiplier of the embedding")
    embed_pattern: str = Field("tok_emb", description="names containing this are the embedding")
    embed_name: str = Field("tok_emb.weight", description="state-dict name of the tied embedding (its Hessian is the final norm's output)")
    hessian_clip_lambda: float = Field(0.0, ge=0, description="Hessian-aware SDClip (#1412): step *= 1 + lambda*(r_row - 1), "
                                       "r_row = mean_j |W_ij| diag(H)_j/mean(diag H), normalised to mean 1; 0 = plain SDClip (#1412 ran 0.175)")
    mlp_clip_sigmas: Optional[float] = Field(None, gt=0, description="clip multiplier of matrices whose name contains mlp_pattern "
                                             "(#1626: 12, #1855: 11.5); none: clip_sigmas")
    attn_clip_sigmas: Optional[float] = Field(None, gt=0, description="clip multiplier of matrices whose name contains attn_pattern "
                                              "(#1626: 13); none: clip_sigmas")
    mlp_pattern: str = Field(".mlp.", description="names containing this use mlp_clip_sigmas")
    attn_pattern: str = Field(".attn.", description="names containing this use attn_clip_sigmas")
    gate_int8: bool = Field(False, description="quant-gate (#1736): 2-D float tensors matching gate_pattern with "
                            "gate_min_numel..gate_max_numel elements are stored int8 per row (step max|row|/127) instead of fp16")
    gate_pattern: str = Field("*.attn_gate_w", description="fnmatch pattern of the gate tensors' state-dict names")
    gate_min_numel: int = Field(32, ge=1, description="gate_int8: smallest gate tensor routed (#1787: 32; #1736: 1024)")
    gate_max_numel: int = Field(8192, ge=1, description="gate_int8: largest gate tensor routed")
    lqer_top_k: int = Field(0, ge=0, description="LQER (#1797): the k quantized tensors with the largest ||W - Q s||_F get a "
                            "low-rank correction of their error (#1851/#1855: 3); 0 = off")
    lqer_rank: int = Field(4, ge=1, description="LQER: rank of the correction")
    lqer_asym: bool = Field(True, description="LQER: int2 A (one scale) and int4 B in groups of lqer_group; "
                            "false (or B not divisible by the group): lqer_factor_bits per row for both")
    lqer_group: int = Field(64, ge=1, description="LQER asym: group size of B's int4 scales")
    lqer_factor_bits: int = Field(4, ge=2, le=8, description="LQER symmetric: bits of both factors")
    min_numel: int = Field(65_536, ge=0, description="2-D tensors with more elements are quantized (Hessians collected); the rest pass through as fp16")
    block_size: int = Field(128, ge=1, description="GPTQ column block (lazy batch update)")
    damp: float = Field(0.01, ge=0, description="damping, as a fraction of mean(diag(H))")
    act_order: bool = Field(True, description="quantize columns in descending diag(H) order")
    scale_floor: bool = Field(False, description="floor every step at 1/(2^(b-1)-1) (int6: 1/31), as the #1306 lineage "
                              "(#1229, #1306, #1423) does; #1394 floors at 1e-10")
    embed_gptq: bool = Field(True, description="GPTQ the tied embedding with its Hessian (#1394, #1423); false: round each "
                             "row to nearest, as #1229/#1306's int8 embedding")
    calibration: Literal["train", "ar", "val"] = Field(
        "train", description="train: fresh training loader (legal inside [train] reserve_seconds); "
        "ar: self-generated sequences (legal); val: validation tokens (marks the run trains-on-val)")
    calibration_document_mask: bool = Field(
        True, description="collect the Hessians with the model's document mask (varlen-attn) on; false: attention over "
                          "whole calibration rows, as #1530-#1855 do (their collect_hessians calls forward_logits(x) "
                          "without cu_seqlens)")
    calibration_batches: int = Field(64, ge=1, description="calibration batches (train, val); H is divided by the batch count")
    calibration_seqs: int = Field(48, ge=1, description="sequences per calibration batch and rank")
    calibration_seq_len: Optional[int] = Field(None, ge=2, description="tokens per calibration sequence; default [train] train_seq_len")
    ar_seqs: int = Field(64, ge=1, description="ar: sequences generated (#1019: 64 x 2048)")
    ar_batch: int = Field(8, ge=1, description="ar: sequences generated together")
    ar_temperature: float = Field(0.8, gt=0, description="ar: sampling temperature")
    ar_seed: int = Field(42, description="ar: sampling seed")
    fit: bool = Field(False, description="search clip_sigmas so that code + artifact bytes land just under "
                      "[artifact] cap_bytes (the code bytes are the run's shipped script)")
    fit_tolerance: float = Field(0.002, gt=0, lt=0.05, description="fit: accept artifact_bytes in [cap*(1-tol), cap]")
    fit_k_min: float = Field(0.5, gt=0, description="fit: smallest clip multiplier tried")
    fit_k_max: float = Field(200.0, gt=0, description="fit: largest clip multiplier tried")
    rotation: Literal["none", "hadamard"] = Field(
        "none", description="hadamard: rotate every GPTQ matrix and its Hessian by a randomized block "
        "Walsh-Hadamard matrix first (MR-GPTQ, #1400); the inverse is applied at load")
    rotation_seed: int = Field(0, description="hadamard: seed of the random signs (stored in the artifact; signs regenerated at load)")
    hadamard_max_block: Optional[int] = Field(None, ge=1, description="hadamard: largest block (a power of two); default: the largest power of two dividing the fan-in")
    hadamard_min_block: int = Field(16, ge=1, description="hadamard: below this uniform block size the fan-in is split greedily into powers of two")
    rotate_embedding: bool = Field(True, description="hadamard: rotate the tied embedding too (its Hessian is rotated with it)")
    report: bool = Field(True, description="write quant_report.json into the run folder")
    report_compressor: Literal["artifact", "zlib", "lzma", "brotli", "none"] = Field(
        "artifact", description="compressor for the report's per-tensor bytes; 'none' skips them")

    @model_validator(mode="after")
    def _k_range(self) -> "GPTQOptions":
        if self.fit_k_min >= self.fit_k_max:
            raise ValueError(f"fit_k_min {self.fit_k_min} must be below fit_k_max {self.fit_k_max}")
        if self.gate_min_numel > self.gate_max_numel:
            raise ValueError(f"gate_min_numel {self.gate_min_numel} must not exceed gate_max_numel {self.gate_max_numel}")
        if self.lqer_top_k > 0 and self.rotation != "none":
            raise ValueError("lqer_top_k needs rotation = \"none\" (LQER corrects the error of unrotated weights)")
        return self


#: Fields ``--tiny`` scales when the recipe left them at their defaults.
TINY_DEFAULTS = {"min_numel": 1024, "calibration_batches": 4, "calibration_seqs": 8, "ar_seqs": 8, "ar_batch": 8}


def tiny_options(opts: GPTQOptions, recipe) -> GPTQOptions:
    """``--tiny``: quantize the small model's matrices too, and calibrate on a few batches.

    Size settings shrink even when a recipe sets them (a record's 256 calibration batches would
    dominate a tiny run), but never grow: an explicitly smaller value is kept."""
    changes = {}
    for k, v in TINY_DEFAULTS.items():
        cur = getattr(opts, k)
        if k not in opts.model_fields_set or (isinstance(v, (int, float)) and isinstance(cur, (int, float)) and cur > v
                                               and k != "min_numel"):
            changes[k] = v
    return opts.model_copy(update=changes)
