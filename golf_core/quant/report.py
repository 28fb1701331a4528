"""Per-tensor quantization report: bits, entropy, compressed bytes, reconstruction error.

``quant_report(qm, state_dict)`` returns a JSON-able dict; ``write_quant_report`` writes it (the
run directory's ``quant_report.json``).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from .compress import compress_bytes
from .dequant import Decoder, dequantize
from .quantized import QuantizedModel
from .serialize import tensor_bytes


def code_entropy_bits(q: torch.Tensor) -> float:
    """Empirical Shannon entropy of the integer codes, in bits per element."""
    if q.numel() == 0:
        return 0.0
    _, counts = torch.unique(q.reshape(-1), return_counts=True)
    p = counts.double() / q.numel()
    return float(-(p * p.log2()).sum())


def quant_report(
    qm: QuantizedModel,
    state_dict: Mapping[str, torch.Tensor],
    compressor: Optional[str] = "brotli",
    byte_shuffle_stride: int = 2,
    decoders: Optional[Mapping[str, Decoder]] = None,
    hessian_error: Optional[Mapping[str, float]] = None,
) -> dict[str, Any]:
    """Report every tensor of ``qm`` against the float weights in ``state_dict``.

    Per tensor: codec, bits (``None`` for passthrough), numel, code entropy (bits/element),
    stored bytes, compressed bytes (each tensor's stored bytes compressed alone with
    ``compressor``; ``None`` skips it), MSE, relative error ``|W-Ŵ|/|W|``, max abs error, and
    ``hessian_error`` when given. Totals under ``"total"``.
    """
    decoded = dequantize(qm, decoders=decoders)
    tensors: list[dict[str, Any]] = []
    tot = {"numel": 0, "stored_bytes": 0, "compressed_bytes": 0, "sq_err": 0.0, "sq_norm": 0.0}
    for name, entry in qm.entries.items():
        stored = [qm.tensors[entry[r]] for r in ("q", "scale", "data") if r in entry]
        raw = b"".join(tensor_bytes(t) for t in stored)
        row: dict[str, Any] = {"name": name, "codec": entry.get("codec"), "bits": entry.get("bits"),
                               "numel": 0, "stored_bytes": len(raw)}
        if "q" in entry:
            row["entropy_bits"] = round(code_entropy_bits(qm.tensors[entry["q"]]), 6)
        if compressor:
            row["compressed_bytes"] = len(compress_bytes(raw, compressor, byte_shuffle_stride)[1])
            tot["compressed_bytes"] += row["compressed_bytes"]
        if name in state_dict and state_dict[name].is_floating_point():
            w = state_dict[name].detach().to("cpu").double()
            err = (decoded[name].double() - w)
            row["numel"] = w.numel()
            sq, nrm = float((err * err).sum()), float((w * w).sum())
            row["mse"] = sq / max(w.numel(), 1)
            row["rel_err"] = math.sqrt(sq / nrm) if nrm > 0 else 0.0
            row["max_abs_err"] = float(err.abs().max()) if w.numel() else 0.0
            tot["sq_err"] += sq
            tot["sq_norm"] += nrm
        else:
            row["numel"] = decoded[name].numel()
        if hessian_error and name in hessian_error:
            row["hessian_error"] = hessian_error[name]
        tot["numel"] += row["numel"]
        tot["stored_bytes"] += len(raw)
        tensors.append(row)
    total = {"numel": tot["numel"], "stored_bytes": tot["stored_bytes"],
             "rel_err": math.sqrt(tot["sq_err"] / tot["sq_norm"]) if tot["sq_norm"] > 0 else 0.0}
    if compressor:
        total["compressed_bytes_sum"] = tot["compressed_bytes"]
    return {"scheme": qm.meta.get("scheme"), "compressor": compressor, "tensors": tensors, "total": total}


def write_quant_report(path: Path | str, report: Mapping[str, Any]) -> None:
    """Write a report as indented JSON."""
    Path(path).write_text(json.dumps(report, indent=1, allow_nan=False) + "\n")
