"""Hessian-aware SDClip (PR #1412): the per-row SDClip step, modulated by each row's importance
under the GPTQ Hessian's diagonal.

For ``W [rows, cols]`` and the diagonal ``h`` of the *damped* Hessian (dead inputs set to 1
before damping, as GPTQ prepares it)::

    c_j   = h_j / mean(h)                      column importance (h clamped to >= 1e-8)
    r_i   = mean_j |W_ij| c_j ,  r /= mean(r)  row importance, mean 1
    s_i   = k * std(W_i) * (1 + λ (r_i - 1)) / (2^(b-1) - 1)     rounded to fp16, >= 1e-10

``λ = 0`` is plain SDClip. #1412 runs ``λ = 0.175`` (0.30 was worse: the larger spread of steps
raised the codes' entropy, so brotli's bytes grew more than the error fell).
"""
from __future__ import annotations

import torch
from torch import Tensor

from golf_core.api import clip_range, sdclip_scale


def row_importance(W: Tensor, h_diag: Tensor) -> Tensor:
    """``r_i = mean_j |W_ij| h_j/mean(h)``, normalised to mean 1 (float32, shape ``[rows]``)."""
    diag = h_diag.detach().float().clamp_min(1e-8)
    col = diag / diag.mean()
    r = (W.detach().float().abs() * col.to(W.device).unsqueeze(0)).mean(dim=1)
    return r / r.mean()


def hessian_sdclip_scale(W: Tensor, h_diag: Tensor, bits: int, clip_sigmas: float, lam: float) -> Tensor:
    """Per-row step ``k*std(row)*(1 + lam*(r_row - 1))/(2^(b-1)-1)`` as fp16 (module docstring);
    ``lam = 0`` gives :func:`golf_core.api.sdclip_scale` exactly."""
    if lam == 0.0:
        return sdclip_scale(W, bits, clip_sigmas)
    w32 = W.detach().float()
    if w32.ndim != 2 or h_diag.numel() != w32.shape[1]:
        raise ValueError(f"hessian_sdclip_scale: weight {tuple(w32.shape)} and Hessian diagonal "
                         f"{tuple(h_diag.shape)} do not match")
    adj = 1.0 + lam * (row_importance(w32, h_diag) - 1.0)
    std = w32.std(dim=1)
    return (clip_sigmas * std * adj / clip_range(bits)).clamp_min(1e-10).to(torch.float16)
