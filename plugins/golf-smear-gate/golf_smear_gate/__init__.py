"""golf-smear-gate: mix each token's embedding with the previous one through a learned gate (#1667, #1851).

Functional API (usable without golf): ``SmearGate`` (the ``model.embed_transform`` seam) and
``install_smear_gate(model, window, bos_id, bos_fix)``.
"""
from golf_smear_gate.smear import CONTROL_PATTERNS, SmearGate, install_smear_gate

__all__ = ["CONTROL_PATTERNS", "SmearGate", "install_smear_gate"]
