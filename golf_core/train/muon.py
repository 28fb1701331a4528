"""Muon: momentum, Nesterov, then Newton-Schulz orthogonalization (research/pg_core.md §4.3).

The baseline's optimizer for the 2-D matrices inside the blocks, written after the record's
numerics:

* ``NS5``: coefficients (3.4445, -4.7750, 2.0315), 5 steps, in bf16, Frobenius normalization
  with eps 1e-7, transposed while rows > cols;
* scale ``sqrt(max(1, rows/cols))``; Nesterov ``g + momentum * buf``;
* the Newton-Schulz work of parameter ``i`` is done by rank ``i % world_size``; every rank
  writes its updates into one flat buffer (bf16) that is all-reduced with SUM, then every rank
  applies every update (DDP already averaged the gradients).

Variants attach without copying the class: ``Muon.preconditioners`` is a list of
``fn(update, param, group) -> update`` applied to the Nesterov update before Newton-Schulz (empty
in the baseline; the muon-eq-r plugin adds its row normalization there),
``Muon.ns_coefficients`` the Newton-Schulz coefficients (one tuple, or one per iteration: the
polar-express plugin installs PR #1787's table), ``Muon.ns_batched`` the bank-era records'
arithmetic order of Newton-Schulz, and the group option
``weight_decay`` is a decoupled ``p *= 1 - lr * wd`` with the scheduled lr (0 in the baseline).
A plugin sets both on the existing optimizers in ``golf_configure_optimizers``. Deeper changes
override :meth:`Muon.precondition`, :meth:`Muon.orthogonalize` or :meth:`Muon.apply_update`.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Sequence, Union

import torch
import torch.distributed as dist
from torch import Tensor

#: The baseline's quintic Newton-Schulz coefficients (a, b, c).
NS5_COEFFS: tuple[float, float, float] = (3.4445, -4.7750, 2.0315)
#: Frobenius-normalization epsilon of NS5.
NS_EPS: float = 1e-7
#: Newton-Schulz coefficients: one ``(a, b, c)`` for every iteration, or one tuple per iteration.
Coefficients = Union[tuple[float, float, float], Sequence[tuple[float, float, float]]]
#: A preconditioner: ``fn(update, param, group) -> update``, before Newton-Schulz.
Preconditioner = Callable[[Tensor, Tensor, dict], Tensor]


def zeropower_via_newtonschulz5(
    G: Tensor, steps: int = 5, eps: float = NS_EPS, dtype: torch.dtype = torch.bfloat16,
    coefficients: Coefficients = NS5_COEFFS, batched: bool = False,
) -> Tensor:
    """Approximately orthogonalize a 2-D matrix with quintic Newton-Schulz iterations.

    ``X = G / (||G||_F + eps)`` (transposed while rows > cols), then per iteration
    ``A = X X^T; X = a X + (b A + c A^2) X``. ``coefficients`` is one ``(a, b, c)`` used for all
    ``steps`` iterations (the baseline's NS5), or a sequence of per-iteration tuples: iteration
    ``i`` uses tuple ``i``, and at most ``len(coefficients)`` iterations run (PR #1787's rule).
    ``batched`` picks the arithmetic order of the bank-era records (#1523 on: a ``[1, rows, cols]``
    batch, transposed before the norm, ``c * (A @ A)``) instead of #1394's (2-D, normalized first,
    ``(c * A) @ A``): the same maths, different bf16 rounding.
    Works in ``dtype`` (bf16 as in the record; float32/float64 for exact tests) and returns a
    tensor of that dtype and of ``G``'s shape.
    """
    if G.ndim != 2:
        raise ValueError(f"Newton-Schulz needs a 2-D matrix, got shape {tuple(G.shape)}")
    if isinstance(coefficients[0], (tuple, list)):
        schedule = tuple(coefficients)[:steps]
    else:
        schedule = (tuple(coefficients),) * steps
    transposed = G.size(0) > G.size(1)
    if batched:
        X = G.to(dtype).unsqueeze(0)
        if transposed:
            X = X.mT
        X = X / (X.norm(dim=(-2, -1), keepdim=True) + eps)
        for a, b, c in schedule:
            A = X @ X.mT
            B = b * A + c * (A @ A)
            X = a * X + B @ X
        X = X.squeeze(0)
        return X.T if transposed else X
    X = G.to(dtype)
    X = X / (X.norm() + eps)
    if transposed:
        X = X.T
    for a, b, c in schedule:
        A = X @ X.T
        B = b * A + c * A @ A
        X = a * X + B @ X
    return X.T if transposed else X


def _dist_rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Muon(torch.optim.Optimizer):
    """Muon with the baseline's numerics and round-robin Newton-Schulz sharding.

    :param params: 2-D parameters (or param-group dicts).
    :param lr: learning rate (each step the loop sets ``lr = base_lr * lr_mul``).
    :param momentum: momentum coefficient (the loop overrides it during momentum warmup).
    :param backend_steps: Newton-Schulz iterations (5).
    :param nesterov: use ``g + momentum * buf`` instead of ``buf``.
    :param weight_decay: decoupled weight decay ``p *= 1 - lr * wd`` (0 in the baseline).
    :param ns_dtype: dtype of Newton-Schulz and of the flat update buffer (bf16 in the record;
        float32/float64 give an exact path for tests).
    :param compile_ns: run Newton-Schulz through ``torch.compile`` (the record does on GPU).
    :param bank_arithmetic: the rounding of the #1019 lineage's "Parallel Muon" over parameter
        banks (#1229, #1306, #1423): the gradient is cast to bf16 before the momentum (bf16
        momentum buffer and Nesterov sum), Newton-Schulz in the batched order (``c*(A @ A)``), and the shape
        scale multiplies the step size (fp32) instead of the bf16 update. Same maths per matrix.
    :param rank: this process's rank for the work split; default: torch.distributed's, else 0.
    :param world_size: number of ranks; default: torch.distributed's, else 1. The flat buffer
        is all-reduced only when torch.distributed is initialized and ``world_size > 1``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        momentum: float = 0.95,
        backend_steps: int = 5,
        nesterov: bool = True,
        *,
        weight_decay: float = 0.0,
        ns_dtype: torch.dtype = torch.bfloat16,
        compile_ns: bool = False,
        bank_arithmetic: bool = False,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            backend_steps=backend_steps,
            nesterov=nesterov,
            weight_decay=weight_decay,
        )
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError(f"Muon takes 2-D parameters only, got shape {tuple(p.shape)}")
        self.ns_dtype = ns_dtype
        self.bank_arithmetic = bank_arithmetic
        self._rank = rank
        self._world_size = world_size
        self._ns: Callable[..., Tensor] = zeropower_via_newtonschulz5
        #: Applied in order to each Nesterov update before Newton-Schulz (see the module docstring).
        self.preconditioners: list[Preconditioner] = []
        #: Newton-Schulz coefficients (``zeropower_via_newtonschulz5``): the baseline's NS5, or a
        #: per-iteration table a plugin installs (polar-express).
        self.ns_coefficients: Coefficients = NS5_COEFFS
        #: Newton-Schulz in the bank-era records' arithmetic order (see ``zeropower_via_newtonschulz5``).
        self.ns_batched: bool = False
        if compile_ns:
            self._ns = torch.compile(zeropower_via_newtonschulz5)

    # -- hook points for variants -----------------------------------------------------------
    def precondition(self, g: Tensor, p: Tensor, group: dict[str, Any]) -> Tensor:
        """Transform the Nesterov update before Newton-Schulz: each of ``self.preconditioners``
        in order (none in the baseline)."""
        for fn in self.preconditioners:
            g = fn(g, p, group)
        return g

    def orthogonalize(self, g: Tensor, group: dict[str, Any]) -> Tensor:
        """Newton-Schulz in ``ns_dtype``, then the ``sqrt(max(1, rows/cols))`` scale (with
        ``bank_arithmetic``: the batched order, and the scale is applied by :meth:`apply_update`)."""
        if self.bank_arithmetic:
            return self._ns(g, steps=group["backend_steps"], dtype=self.ns_dtype, coefficients=self.ns_coefficients,
                            batched=True)
        u = self._ns(g, steps=group["backend_steps"], dtype=self.ns_dtype, coefficients=self.ns_coefficients,
                     batched=self.ns_batched)
        return u * max(1.0, g.size(0) / g.size(1)) ** 0.5

    def apply_update(self, p: Tensor, update: Tensor, group: dict[str, Any]) -> None:
        """``p *= 1 - lr*wd`` (when wd > 0), then ``p -= lr * update`` (``lr * scale`` with
        ``bank_arithmetic``)."""
        lr = group["lr"]
        wd = group.get("weight_decay", 0.0)
        if wd:
            p.mul_(1.0 - lr * wd)
        if self.bank_arithmetic:
            lr = lr * max(1.0, p.size(0) / p.size(1)) ** 0.5
        p.add_(update, alpha=-lr)

    # -- the step -----------------------------------------------------------------------------
    def rank_world(self) -> tuple[int, int]:
        """(rank, world_size) used for the Newton-Schulz work split."""
        r, w = _dist_rank_world()
        return (self._rank if self._rank is not None else r, self._world_size if self._world_size is not None else w)

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """One Muon step over every group (see the module docstring)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        rank, world = self.rank_world()
        reduce = world > 1 and dist.is_available() and dist.is_initialized()
        for group in self.param_groups:
            params = group["params"]
            if not params:
                continue
            total = sum(int(p.numel()) for p in params)
            flat = torch.zeros(total, device=params[0].device, dtype=self.ns_dtype)
            momentum = group["momentum"]
            off = 0
            for i, p in enumerate(params):
                n = p.numel()
                if i % world == rank and p.grad is not None:
                    g = p.grad.to(self.ns_dtype) if self.bank_arithmetic else p.grad
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = torch.zeros_like(g)
                    buf = state["momentum_buffer"]
                    buf.mul_(momentum).add_(g)
                    if group["nesterov"]:
                        g = g.add(buf, alpha=momentum)
                    else:
                        g = buf
                    g = self.precondition(g, p, group)
                    u = self.orthogonalize(g, group)
                    flat[off : off + n] = u.reshape(-1)
                off += n
            if reduce:
                dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            off = 0
            for p in params:
                n = p.numel()
                self.apply_update(p, flat[off : off + n].view_as(p).to(dtype=p.dtype), group)
                off += n
        return loss
