"""An fp32 exponential moving average of a model's whole state dict (research/pg_core.md §5.5).

After every optimizer step: ``ema = decay * ema + (1 - decay) * w`` for every floating-point
entry of ``model.state_dict()`` (parameters and buffers), computed in float32 as the record does
(``mul_(decay).add_(w.float(), alpha=1 - decay)``), no bias correction. The average starts from
the weights it is created from (the record: the restored initial weights, after the compile
warmup). Applying it loads the averages into the model, each cast to that entry's dtype.
Entries that are not floating point (integer buffers, if a model has any) are not averaged:
the model keeps its own values.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Union

import torch
from torch import Tensor, nn

#: PR #1394's EMA decay (pg_core.md §5.1); half-life about 231 steps.
DEFAULT_DECAY = 0.997


def _state(obj: Union[nn.Module, Mapping[str, Tensor]]) -> Mapping[str, Tensor]:
    return obj.state_dict() if isinstance(obj, nn.Module) else obj


class WeightEMA:
    """fp32 shadow copy of a state dict, updated with :meth:`update`, applied with :meth:`copy_to`.

    :param source: a model or a state dict: the starting value of the average.
    :param decay: weight of the old average in each update (0.997).
    """

    def __init__(self, source: Union[nn.Module, Mapping[str, Tensor]], decay: float = DEFAULT_DECAY):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must lie in [0, 1), got {decay}")
        self.decay = float(decay)
        self.shadow: dict[str, Tensor] = {
            name: t.detach().float().clone() for name, t in _state(source).items() if t.is_floating_point()
        }
        self.updates = 0

    @torch.no_grad()
    def update(self, source: Union[nn.Module, Mapping[str, Tensor]]) -> None:
        """One step of the average with the current weights of ``source``."""
        state = _state(source)
        missing = [n for n in self.shadow if n not in state]
        if missing:
            raise KeyError(f"EMA entry {missing[0]!r} is not in the model's state dict")
        names = list(self.shadow)
        shadow = [self.shadow[n] for n in names]
        current = [state[n].detach().float() for n in names]
        torch._foreach_mul_(shadow, self.decay)
        torch._foreach_add_(shadow, current, alpha=1.0 - self.decay)
        self.updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        """Load the averages into ``model`` (each cast to the dtype and device of its entry)."""
        current = model.state_dict()
        new = dict(current)
        for name, avg in self.shadow.items():
            if name not in current:
                raise KeyError(f"EMA entry {name!r} is not in the model's state dict")
            new[name] = avg.to(dtype=current[name].dtype, device=current[name].device)
        model.load_state_dict(new, strict=True)

    def averaged_state(self, like: Optional[Mapping[str, Tensor]] = None) -> dict[str, Tensor]:
        """The averages, cast to the dtypes of ``like`` when given (fp32 otherwise)."""
        if like is None:
            return {n: t.clone() for n, t in self.shadow.items()}
        return {n: t.to(dtype=like[n].dtype) for n, t in self.shadow.items()}

    def to(self, device: Union[str, torch.device]) -> "WeightEMA":
        """Move the shadow tensors to ``device`` (in place); returns self."""
        self.shadow = {n: t.to(device) for n, t in self.shadow.items()}
        return self

    def state_dict(self) -> dict[str, Any]:
        """``{"decay", "updates", "shadow"}``: tensors and plain values, for checkpoints."""
        return {"decay": self.decay, "updates": self.updates, "shadow": dict(self.shadow)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output; tensors keep this EMA's devices when it has them."""
        shadow = state["shadow"]
        if self.shadow and set(shadow) != set(self.shadow):
            extra = sorted(set(shadow) ^ set(self.shadow))
            raise KeyError(f"EMA checkpoint does not match the model (entry {extra[0]!r})")
        self.shadow = {
            n: t.detach().float().to(self.shadow[n].device if n in self.shadow else t.device).clone()
            for n, t in shadow.items()
        }
        self.updates = int(state.get("updates", 0))

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any], decay: Optional[float] = None) -> "WeightEMA":
        """A WeightEMA rebuilt from :meth:`state_dict` output (decay overridable)."""
        ema = cls({}, decay=float(state.get("decay", DEFAULT_DECAY)) if decay is None else decay)
        ema.load_state_dict(state)
        return ema
