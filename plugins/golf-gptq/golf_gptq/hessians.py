"""Collect GPTQ Hessians ``H = sum X^T X`` with forward hooks (research/pg_core.md §5.7).

* every ``nn.Linear`` whose weight has more than ``min_numel`` elements: its input ``X``;
* a tied embedding (``model.lm_head is None``): the output of ``model.final_norm``, the input
  of the logits ``h @ E^T``, so ``E`` quantizes like a linear layer with input ``h``.

Inputs are flattened to ``[tokens, fan_in]`` in float32. Layers run several times per forward
(depth recurrence) accumulate every pass. After collection ``H`` is divided by the number of
batches (not tokens), as #1394 does.
"""
from __future__ import annotations

from typing import Callable, ContextManager, Iterable, Optional

import torch
from torch import Tensor, nn


def hessian_targets(model: nn.Module, min_numel: int = 65_536, embed_name: str = "tok_emb.weight") -> dict[str, nn.Module]:
    """State-dict weight name -> module whose input (linears) or output (the final norm, for a
    tied embedding) feeds that weight."""
    out: dict[str, nn.Module] = {}
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear) and mod.weight.ndim == 2 and mod.weight.numel() > min_numel:
            out[f"{name}.weight" if name else "weight"] = mod
    params = dict(model.named_parameters())
    tied = getattr(model, "lm_head", "absent") is None
    norm = getattr(model, "final_norm", None)
    if tied and isinstance(norm, nn.Module) and embed_name in params and params[embed_name].numel() > min_numel:
        out[embed_name] = norm
    return out


class HessianCollector:
    """Forward hooks that accumulate ``X^T X`` per target; use as a context manager.

    ``with HessianCollector(model, min_numel) as hc: model.forward_logits(x) ...``;
    then ``hc.hessians()`` gives ``{weight name: H / batches}``.
    """

    def __init__(self, model: nn.Module, min_numel: int = 65_536, embed_name: str = "tok_emb.weight"):
        self.model = model
        self.targets = hessian_targets(model, min_numel, embed_name)
        self.sums: dict[str, Tensor] = {}
        self.batches = 0
        self._handles: list = []
        self.embed_name = embed_name

    def _add(self, key: str, x: Tensor) -> None:
        x = x.detach().reshape(-1, x.shape[-1]).float()
        h = self.sums.get(key)
        if h is None:
            h = self.sums[key] = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float32, device=x.device)
        h.addmm_(x.T, x)

    def __enter__(self) -> "HessianCollector":
        for key, mod in self.targets.items():
            if key == self.embed_name and not isinstance(mod, nn.Linear):
                self._handles.append(mod.register_forward_hook(lambda m, inp, out, k=key: self._add(k, out)))
            else:
                self._handles.append(mod.register_forward_pre_hook(lambda m, inp, k=key: self._add(k, inp[0])))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def hessians(self) -> dict[str, Tensor]:
        """The accumulated Hessians divided by the number of batches seen."""
        n = max(self.batches, 1)
        return {k: v / n for k, v in self.sums.items()}


def _forward(model: nn.Module, x: Tensor) -> None:
    fn = getattr(model, "forward_logits", None)
    if callable(fn):
        fn(x)
    else:
        model(x)


@torch.no_grad()
def collect_hessians(model: nn.Module, batches: Iterable[Tensor], min_numel: int = 65_536,
                     embed_name: str = "tok_emb.weight",
                     autocast: Optional[Callable[[], ContextManager]] = None,
                     device: Optional[torch.device] = None) -> dict[str, Tensor]:
    """Run ``model.forward_logits`` (else ``model(x)``) on every batch of token ids and return
    ``{weight name: sum X^T X / batches}``. The model is put in eval mode and restored."""
    was_training = model.training
    model.eval()
    try:
        with HessianCollector(model, min_numel, embed_name) as hc:
            for x in batches:
                if device is not None:
                    x = x.to(device)
                if autocast is not None:
                    with autocast():
                        _forward(model, x)
                else:
                    _forward(model, x)
                hc.batches += 1
        return hc.hessians()
    finally:
        model.train(was_training)
