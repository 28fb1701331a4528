"""Per-head attention output gates (``block.attn.out_gate``): ``y_h <- y_h * g_h``.

``y [B,T,H,D]`` is the attention output after XSA, before the output projection; ``x [B,T,dim]``
is the attention input (``attn_norm(x) * ln_scale``); ``q_raw`` the query projection before
RoPE. Three forms, one per record family:

* ``output`` (T7, PR #1667 ``GATE_ATTN_OUT``): ``g = 2*sigmoid(W_g . src[:window])``,
  ``W_g`` = ``attn_gate_proj`` ``Linear(window -> H)``, zero init (g = 1); ``src`` = ``x``
  (``GATE_ATTN_SRC=proj``) or ``q_raw`` (``q``).
* ``dense`` (T8, PR #1736 ``GATED_ATTN_ENABLED``, "G1" of arXiv:2505.06708):
  ``g = sigmoid(W . x)``, ``W`` = ``attn_gate_w [H, dim]`` ~ N(0, init_std^2) (g ~ 0.5).
* ``sparse`` (T9, PR #1787 ``SPARSE_ATTN_GATE_ENABLED``): ``g = sigmoid(scale * W . x[:window])``,
  ``W`` = ``attn_gate_w [H, window]``, zero init when ``init_std = 0`` (g = 0.5).

The tensor names keep the records' (``attn_gate_proj``, ``attn_gate_w``) so the quantizers'
name rules (int8 ``attn_gate_w``, #1736's quant-gate) find them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from golf_core import GolfError
from golf_core.api import CastedLinear

MODES = ("output", "dense", "sparse")
#: Parameter names of the gates: control tensors (fp32, scalar Adam group).
CONTROL_PATTERNS = ("attn_gate_proj", "attn_gate_w")


class OutputGate(nn.Module):
    """T7: ``y_h * 2*sigmoid(attn_gate_proj(src[..., :window]))_h``."""

    def __init__(self, num_heads: int, window: int = 12, src: str = "proj"):
        super().__init__()
        if src not in ("proj", "q"):
            raise GolfError(f"attention output gate src {src!r}: expected 'proj' or 'q'")
        self.window, self.src = int(window), src
        self.attn_gate_proj = CastedLinear(self.window, num_heads, zero_init=True)
        nn.init.zeros_(self.attn_gate_proj.weight)

    def forward(self, y: Tensor, x: Tensor, q_raw: Tensor) -> Tensor:
        """Gate each head of ``y``."""
        src = q_raw if self.src == "q" else x
        g = 2.0 * torch.sigmoid(self.attn_gate_proj(src[..., : self.window].contiguous()))
        return y * g[..., None]


class DenseGate(nn.Module):
    """T8: ``y_h * sigmoid(attn_gate_w . x)_h`` with ``attn_gate_w [H, dim]``."""

    def __init__(self, num_heads: int, dim: int, init_std: float = 0.01):
        super().__init__()
        self.attn_gate_w = nn.Parameter(torch.empty(num_heads, dim, dtype=torch.float32))
        nn.init.normal_(self.attn_gate_w, mean=0.0, std=float(init_std))

    def forward(self, y: Tensor, x: Tensor, q_raw: Tensor) -> Tensor:
        """Gate each head of ``y``."""
        g = torch.sigmoid(F.linear(x.contiguous(), self.attn_gate_w.to(x.dtype)))
        return y * g[..., None]


class SparseGate(nn.Module):
    """T9: ``y_h * sigmoid(scale * attn_gate_w . x[..., :window])_h`` with ``attn_gate_w [H, window]``."""

    def __init__(self, num_heads: int, window: int = 12, scale: float = 1.0, init_std: float = 0.0):
        super().__init__()
        self.window, self.scale = int(window), float(scale)
        w = torch.zeros(num_heads, self.window, dtype=torch.float32)
        if init_std > 0:
            nn.init.normal_(w, mean=0.0, std=float(init_std))
        self.attn_gate_w = nn.Parameter(w)

    def forward(self, y: Tensor, x: Tensor, q_raw: Tensor) -> Tensor:
        """Gate each head of ``y``."""
        g = torch.sigmoid(self.scale * F.linear(x[..., : self.window].contiguous(), self.attn_gate_w.to(x.dtype)))
        return y * g[..., None]


def install_attn_gate(model: nn.Module, mode: str, window: int = 12, src: str = "proj",
                      init_std: float = 0.0, scale: float = 1.0) -> list[nn.Module]:
    """Install a gate of ``mode`` as ``block.attn.out_gate`` of every block of ``model`` (a golf
    ``GPT``), and list the gate names in ``model.golf_control_patterns``. Draws RNG only for
    ``dense`` (and ``sparse`` with ``init_std > 0``), block by block."""
    if mode not in MODES:
        raise GolfError(f"attention gate mode {mode!r}: expected one of {', '.join(MODES)}")
    dim = model.tok_emb.weight.size(1)
    if mode != "dense" and not 1 <= window <= dim:
        raise GolfError(f"options.attn-gate.window = {window}: must be in 1..{dim} (the model width)")
    gates = []
    for block in model.blocks:
        H = block.attn.num_heads
        if mode == "output":
            gate: nn.Module = OutputGate(H, window, src)
        elif mode == "dense":
            gate = DenseGate(H, dim, init_std)
        else:
            gate = SparseGate(H, window, scale, init_std)
        block.attn.out_gate = gate.to(block.attn.c_q.weight.device)
        gates.append(block.attn.out_gate)
    patterns = tuple(getattr(model, "golf_control_patterns", ()) or ())
    model.golf_control_patterns = patterns + tuple(p for p in CONTROL_PATTERNS if p not in patterns)
    return gates
