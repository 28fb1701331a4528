"""The baseline's optimizer groups (research/pg_core.md §4.4) and the OptimizerSet holding them.

Routing of the model's trainable parameters, by name:

=================  ===============================================  =========  =================
group              parameters                                       optimizer  lr
=================  ===============================================  =========  =================
``embed``          ``tok_emb.weight``                               Adam       tied_embed_lr
                                                                               (embed_lr untied)
``head``           ``lm_head.*`` (untied embeddings only)           Adam       head_lr
``muon``           2-D params inside ``blocks`` matching no          Muon       matrix_lr
                   control pattern
``scalar``         block params with ndim < 2 or a control-pattern  Adam       scalar_lr
                   name, plus every other parameter outside the
                   blocks (``skip_weights``, plugins' gates ...)
=================  ===============================================  =========  =================

A control pattern matches when it is a substring of the parameter's full name, so the 2-D
``resid_mix`` (2 x d) goes to the scalar Adam, not to Muon. Plugins add patterns for their own
tensors with the model attribute ``golf_control_patterns`` (see :func:`control_patterns`).
Adam becomes AdamW when the group's weight decay (``[train] embed_wd`` / ``adam_wd``) is > 0;
AdamW's decay is multiplied by the scheduled lr, like the records'.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Optional

import torch
from torch import nn

from ..config import TrainSection
from ..errors import GolfError
from ..model.params import CONTROL_TENSOR_PATTERNS as _MODEL_CONTROL_PATTERNS
from .banks import BANKED_ARITHMETIC, banked_clip_order, clip_banked_
from .muon import Muon

#: The control-tensor name patterns (pg_core.md §4.2; plugins add theirs on the model): kept in fp32,
#: routed to the scalar Adam even when 2-D, passed through unquantized. One list for the whole
#: core: it is ``golf_core.model.params.CONTROL_TENSOR_PATTERNS``.
CONTROL_TENSOR_PATTERNS: tuple[str, ...] = _MODEL_CONTROL_PATTERNS

#: Device types with a fused Adam/AdamW kernel (the records pass ``fused=True`` always).
FUSED_ADAM_DEVICES = ("cpu", "cuda")

#: Name of the model attribute where plugins list extra control patterns (e.g. ``skip_gates``).
MODEL_PATTERNS_ATTR = "golf_control_patterns"


def control_patterns(model: Optional[nn.Module] = None) -> tuple[str, ...]:
    """The baseline's patterns plus those a plugin added to ``model.golf_control_patterns``.

    A plugin that adds a control tensor extends the model it transforms, e.g. in
    ``golf_build_model``: ``model.golf_control_patterns = (*getattr(model,
    "golf_control_patterns", ()), "skip_gates")``. Keeping the list on the model (not in a
    global) keeps two runs in one process independent.
    """
    extra = tuple(getattr(model, MODEL_PATTERNS_ATTR, ()) or ()) if model is not None else ()
    out = list(CONTROL_TENSOR_PATTERNS)
    out += [p for p in extra if p not in out]
    return tuple(out)


def is_control_tensor(name: str, patterns: Iterable[str] = CONTROL_TENSOR_PATTERNS) -> bool:
    """True when one of ``patterns`` is a substring of the parameter name ``name``."""
    return any(p in name for p in patterns)


class OptimizerSet:
    """Named torch optimizers that step together, plus the global gradient-clip norm.

    Every param group carries ``base_lr``; :meth:`set_lr_mul` sets ``lr = base_lr * mul``.
    Order of insertion is the order of ``step()``. Plugins change it in
    ``golf_configure_optimizers`` (add/replace an optimizer, set group options such as
    Muon's ``preconditioners`` / ``weight_decay``, or a function in ``step_schedules``).
    """

    def __init__(self, optimizers: Optional[dict[str, torch.optim.Optimizer]] = None, grad_clip_norm: float = 0.0,
                 clip_order: Optional[Iterable[torch.Tensor]] = None):
        self.optimizers: dict[str, torch.optim.Optimizer] = dict(optimizers or {})
        self.grad_clip_norm = float(grad_clip_norm)
        #: parameters in the order the clip sums their norms (``model.parameters()`` order, the
        #: records'); parameters only the optimizers hold follow in group order. An entry may be
        #: a tuple of parameters: one norm over their concatenated gradients (a parameter bank)
        self.clip_order: list[Any] = list(clip_order or [])
        #: ``fn(optimizers, frac)`` called before every timed step with the training fraction the
        #: step's lr multiplier used (plugins add schedules of their own here, e.g. a decay taper)
        self.step_schedules: list[Callable[["OptimizerSet", float], None]] = []
        for name, opt in self.optimizers.items():
            self._check_base_lr(name, opt)

    @staticmethod
    def _check_base_lr(name: str, opt: torch.optim.Optimizer) -> None:
        for group in opt.param_groups:
            group.setdefault("base_lr", group["lr"])

    # -- container ----------------------------------------------------------------------------
    def add(self, name: str, opt: torch.optim.Optimizer) -> None:
        """Add (or replace) the optimizer ``name``; groups without ``base_lr`` get their lr."""
        self._check_base_lr(name, opt)
        self.optimizers[name] = opt

    def remove(self, name: str) -> torch.optim.Optimizer:
        """Remove and return the optimizer ``name``."""
        return self.optimizers.pop(name)

    def __getitem__(self, name: str) -> torch.optim.Optimizer:
        return self.optimizers[name]

    def __contains__(self, name: object) -> bool:
        return name in self.optimizers

    def __iter__(self) -> Iterator[torch.optim.Optimizer]:
        return iter(self.optimizers.values())

    def __len__(self) -> int:
        return len(self.optimizers)

    def names(self) -> list[str]:
        """Names of the optimizers, in step order."""
        return list(self.optimizers)

    def items(self) -> Iterable[tuple[str, torch.optim.Optimizer]]:
        """(name, optimizer) pairs, in step order."""
        return self.optimizers.items()

    def param_groups(self) -> Iterator[dict[str, Any]]:
        """Every param group of every optimizer."""
        for opt in self.optimizers.values():
            yield from opt.param_groups

    def params(self) -> list[torch.Tensor]:
        """Every parameter, once, in group order."""
        seen: set[int] = set()
        out = []
        for g in self.param_groups():
            for p in g["params"]:
                if id(p) not in seen:
                    seen.add(id(p))
                    out.append(p)
        return out

    def muons(self) -> list[Muon]:
        """The Muon optimizers (momentum warmup applies to them)."""
        return [o for o in self.optimizers.values() if isinstance(o, Muon)]

    # -- per step -------------------------------------------------------------------------------
    def set_lr_mul(self, mul: float) -> None:
        """``lr = base_lr * mul`` for every group."""
        for g in self.param_groups():
            g["lr"] = g["base_lr"] * mul

    def apply_step_schedules(self, frac: float) -> None:
        """Run every ``step_schedules`` function, in order, with the training fraction ``frac``."""
        for fn in self.step_schedules:
            fn(self, frac)

    def set_muon_momentum(self, momentum: float) -> None:
        """Set the momentum of every Muon group."""
        for o in self.muons():
            for g in o.param_groups:
                g["momentum"] = momentum

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero every optimizer's gradients."""
        for o in self.optimizers.values():
            o.zero_grad(set_to_none=set_to_none)

    def clip_params(self) -> list[torch.Tensor]:
        """The clipped parameters in summation order: :attr:`clip_order` (the model's
        ``parameters()`` order, as the records' ``clip_grad_norm_(base_model.parameters())``),
        then any other optimized parameter in group order. The order matters: one float32 ulp of
        the total norm, amplified by Newton-Schulz, makes runs drift apart."""
        flat = [q for e in self.clip_order for q in (e if isinstance(e, tuple) else (e,))]
        seen = {id(p) for p in flat}
        return flat + [p for p in self.params() if id(p) not in seen]

    def clip_grads(self) -> Optional[torch.Tensor]:
        """Global-norm clipping of all parameters' gradients when ``grad_clip_norm > 0``.

        With bank entries in :attr:`clip_order` the total norm is taken over one norm per bank
        (its members' gradients concatenated, as the record's 3-D bank holds them), then
        :func:`torch.nn.utils.clip_grads_with_norm_`: the arithmetic of ``clip_grad_norm_`` on
        the record's banked model."""
        if self.grad_clip_norm <= 0:
            return None
        if not any(isinstance(e, tuple) for e in self.clip_order):
            return torch.nn.utils.clip_grad_norm_(self.clip_params(), self.grad_clip_norm)
        params = self.clip_params()
        rest = params[sum(len(e) if isinstance(e, tuple) else 1 for e in self.clip_order):]
        return clip_banked_(self.clip_order, self.grad_clip_norm, rest)

    def step(self) -> None:
        """Step every optimizer, in order."""
        for o in self.optimizers.values():
            o.step()

    # -- state ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{name: optimizer.state_dict()}``."""
        return {name: o.state_dict() for name, o in self.optimizers.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned; the names must match."""
        if set(state) != set(self.optimizers):
            raise GolfError(
                f"optimizer state has optimizers {sorted(state)} but this run has {sorted(self.optimizers)}"
            )
        for name, o in self.optimizers.items():
            o.load_state_dict(state[name])

    def check_covers(self, model: nn.Module) -> None:
        """GolfError naming the first trainable parameter optimized zero or several times."""
        count: dict[int, int] = {}
        for g in self.param_groups():
            for p in g["params"]:
                count[id(p)] = count.get(id(p), 0) + 1
        for name, p in model.named_parameters():
            if p.requires_grad and count.get(id(p), 0) != 1:
                raise GolfError(f"parameter {name!r} is in {count.get(id(p), 0)} optimizer groups; it must be in exactly one")


def route_parameters(model: nn.Module, patterns: Optional[Iterable[str]] = None) -> dict[str, list[tuple[str, nn.Parameter]]]:
    """Split the model's trainable parameters into ``embed``, ``head``, ``muon`` and ``scalar``.

    See the module docstring for the rule. ``patterns`` defaults to :func:`control_patterns`.
    """
    pats = tuple(patterns) if patterns is not None else control_patterns(model)
    routes: dict[str, list[tuple[str, nn.Parameter]]] = {"embed": [], "head": [], "muon": [], "scalar": []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name == "tok_emb.weight":
            routes["embed"].append((name, p))
        elif name.startswith("lm_head."):
            routes["head"].append((name, p))
        elif name.startswith("blocks.") and p.ndim == 2 and not is_control_tensor(name, pats):
            routes["muon"].append((name, p))
        else:
            routes["scalar"].append((name, p))
    return routes


def _adam(params: list[nn.Parameter], lr: float, wd: float, train: TrainSection, fused: bool) -> torch.optim.Optimizer:
    cls = torch.optim.AdamW if wd > 0 else torch.optim.Adam
    kw: dict[str, Any] = dict(betas=(train.beta1, train.beta2), eps=train.adam_eps, weight_decay=wd)
    if fused:
        kw["fused"] = True
    return cls([{"params": params, "lr": lr, "base_lr": lr}], **kw)


def build_optimizers(
    model: nn.Module,
    train: TrainSection,
    world_size: int = 1,
    rank: int = 0,
    *,
    patterns: Optional[Iterable[str]] = None,
    ns_dtype: torch.dtype = torch.bfloat16,
    compile_ns: bool = False,
) -> OptimizerSet:
    """The baseline's optimizers for ``model`` (pg_core.md §4.4), in the baseline's step order.

    ``embed`` (Adam), ``head`` (Adam, untied only), ``muon`` (Muon over the block matrices),
    ``scalar`` (Adam); each group stores ``base_lr``. ``grad_clip_norm`` comes from ``train``;
    the clip sums norms in ``model.parameters()`` order (``muon_arithmetic = "banks"`` / ``"banks-first"``: per bank, :mod:`.banks`). Fused Adam is requested whenever the
    parameters' devices have it (CPU and CUDA), as the records always request it. Empty groups
    are left out.
    """
    routes = route_parameters(model, patterns)
    tied = not routes["head"]
    fused = all(p.device.type in FUSED_ADAM_DEVICES for p in model.parameters())
    opts: dict[str, torch.optim.Optimizer] = {}
    if routes["embed"]:
        lr = train.tied_embed_lr if tied else train.embed_lr
        opts["embed"] = _adam([p for _, p in routes["embed"]], lr, train.embed_wd, train, fused)
    if routes["head"]:
        opts["head"] = _adam([p for _, p in routes["head"]], train.head_lr, 0.0, train, fused)
    if routes["muon"]:
        muon = Muon(
            [p for _, p in routes["muon"]],
            lr=train.matrix_lr,
            momentum=train.muon_momentum,
            backend_steps=train.muon_backend_steps,
            ns_dtype=ns_dtype,
            compile_ns=compile_ns,
            bank_arithmetic=train.muon_arithmetic in BANKED_ARITHMETIC,
            rank=rank,
            world_size=world_size,
        )
        for g in muon.param_groups:
            g["base_lr"] = train.matrix_lr
        opts["muon"] = muon
    if routes["scalar"]:
        opts["scalar"] = _adam([p for _, p in routes["scalar"]], train.scalar_lr, train.adam_wd, train, fused)
    order = banked_clip_order(model, train.muon_arithmetic)
    if order is None:
        order = [p for p in model.parameters() if p.requires_grad]
    return OptimizerSet(opts, grad_clip_norm=train.grad_clip_norm, clip_order=order)
