"""golf-attn-gate: a learned per-head gate on the attention output, before the projection (T7, T8, T9).

Functional API (usable without golf): ``OutputGate``, ``DenseGate``, ``SparseGate`` (the
``block.attn.out_gate`` seam) and ``install_attn_gate(model, mode, ...)``.
"""
from golf_attn_gate.gates import CONTROL_PATTERNS, MODES, DenseGate, OutputGate, SparseGate, install_attn_gate

__all__ = ["CONTROL_PATTERNS", "DenseGate", "MODES", "OutputGate", "SparseGate", "install_attn_gate"]
