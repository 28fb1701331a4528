"""Parallel residual trunks: three forms of "attention and MLP side by side" (``model.trunk``).

Notation: ``mix(x) = resid_mix[0]*x + resid_mix[1]*x0``, ``A(x) = attn_scale*attn(attn_norm(x)*s)``,
``M(x) = mlp_scale*mlp(mlp_norm(x)*s)`` (``Block.mix_input``, ``attn_branch``, ``mlp_branch``).
A block is *parallel* when its physical index is ``>= start``.

``gptj`` (PR #1412 ``PARALLEL_RESIDUAL_START``; #1493, #1514): one stream; a parallel block is
``x_in = mix(x); x = x_in + A(x_in) + M(x_in)`` (the MLP reads the pre-attention input).
No parameters.

``split`` (PR #1477): at the first parallel decoder block the stream forks, ``lane0 = x``,
``lane1 = x``; from then on every decoder block does ``lane0 = mix(lane0) + A(mix(lane0))`` and
``lane1 = lane1 + M(lane1)``; U-Net skips go to lane0 only; the output is
``m*lane0 + (1-m)*lane1`` with the scalar ``lane_merge`` ``m`` (init 0.5).

``routed`` (PR #1529, then every later record): at the first parallel block ``lane0 = lane1 = x``;
a parallel block computes ``a = A(mix(lane0))``, ``m = M(lane1)`` and routes them::

    lane0 = r[i,0]*lane0 + P[i,0,0]*a + P[i,1,0]*m
    lane1 = r[i,1]*lane1 + P[i,0,1]*a + P[i,1,1]*m

with ``parallel_post_lambdas P [L,2,2]`` (init 1) and ``parallel_resid_lambdas r [L,2]`` (init
1.1); U-Net skips go to lane0 only; the output is ``(lane0 + lane1)/2``.

Skip placement (``split`` and ``routed``): where the U-Net skip of the *first* parallel
decoder block goes. ``"both-lanes"`` (#1477, #1529): the skip is added to the stream, then the
stream forks, so both lanes carry it. ``"lane0"`` (PR #1530 ``forward_logits`` and
``forward_ttt``, kept by every later record): the lanes fork from the stream first and the skip
goes to lane0 only (``lane0 = skip(x)``, ``lane1 = x``). Every later skip goes to lane0 in both.

In ``split`` and ``routed`` the lanes live in the decoder: an encoder block runs sequentially
even when its index is ``>= start``. The records start at layer 7/8, which no encoder of theirs
holds, so this only decides shallow (``--tiny``) layouts.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from golf_core import GolfError
from golf_core.api import Trunk

MODES = ("gptj", "split", "routed")
SKIP_PLACEMENTS = ("both-lanes", "lane0")


class GPTJTrunk(Trunk):
    """``gptj``: parallel blocks add attention and MLP of the same mixed input (#1412)."""

    def __init__(self, start: int):
        super().__init__()
        self.start = int(start)

    def _block(self, block: nn.Module, i: int, x: Tensor, x0: Tensor, doc: tuple) -> Tensor:
        if i < self.start:
            return block(x, x0, *doc)
        x_in = block.mix_input(x, x0)
        a = block.attn_branch(x_in, *doc)
        m = block.mlp_branch(x_in)  # both branches before the sum: #1412's autograd order, bitwise
        return x_in + a + m

    def forward(self, x: Tensor, x0: Tensor, blocks: nn.ModuleList, skips: nn.Module,
                encoder: Sequence[int], decoder: Sequence[int], cu_seqlens: Optional[Tensor] = None,
                max_seqlen: int = 0) -> Tensor:
        """The baseline trunk with ``gptj`` blocks from physical index ``start`` (``cu_seqlens``,
        ``max_seqlen``: documents, for every attention)."""
        doc = (cu_seqlens, max_seqlen)
        stack: list[Tensor] = []
        for i in encoder:
            x = self._block(blocks[i], i, x, x0, doc)
            stack.append(x)
        for j, i in enumerate(decoder):
            if j < skips.num_skips and stack:
                x = skips(j, x, stack.pop())
            x = self._block(blocks[i], i, x, x0, doc)
        return x

    def extra_repr(self) -> str:
        """Show the start layer."""
        return f"start={self.start}"


class _LaneTrunk(Trunk):
    """Shared walk of the two-lane forms: sequential encoder, lanes from the first parallel
    decoder block, later skips into lane0 only; the first parallel block's skip goes where
    ``skip_placement`` says (``"both-lanes"``: before the fork; ``"lane0"``: after it, to lane0)."""

    def __init__(self, start: int, skip_placement: str = "both-lanes"):
        super().__init__()
        self.start = int(start)
        self.skip_placement = skip_placement

    def fork(self, block: nn.Module, i: int, lane0: Tensor, x: Tensor, x0: Tensor,
             doc: tuple) -> tuple[Tensor, Tensor]:
        """The lanes after the first parallel block: lane0 enters as ``lane0``, lane1 as the
        stream ``x`` (the same tensor unless a skip went to lane0 alone)."""
        raise NotImplementedError

    def step(self, block: nn.Module, i: int, lane0: Tensor, lane1: Tensor, x0: Tensor,
             doc: tuple) -> tuple[Tensor, Tensor]:
        """The lanes after a later parallel block (``doc``: ``(cu_seqlens, max_seqlen)`` for the attention)."""
        raise NotImplementedError

    def merge(self, lane0: Tensor, lane1: Tensor) -> Tensor:
        """The stream handed to the final norm."""
        raise NotImplementedError

    def forward(self, x: Tensor, x0: Tensor, blocks: nn.ModuleList, skips: nn.Module,
                encoder: Sequence[int], decoder: Sequence[int], cu_seqlens: Optional[Tensor] = None,
                max_seqlen: int = 0) -> Tensor:
        """Sequential encoder; decoder forks into two lanes at the first parallel block
        (``cu_seqlens``, ``max_seqlen``: documents, for every attention)."""
        doc = (cu_seqlens, max_seqlen)
        stack: list[Tensor] = []
        for i in encoder:
            x = blocks[i](x, x0, *doc)
            stack.append(x)
        lanes: tuple[Tensor, Tensor] | None = None
        for j, i in enumerate(decoder):
            pop = j < skips.num_skips and bool(stack)
            if lanes is None:
                if i >= self.start and self.skip_placement == "lane0":
                    lane0 = skips(j, x, stack.pop()) if pop else x
                    lanes = self.fork(blocks[i], i, lane0, x, x0, doc)
                    continue
                if pop:
                    x = skips(j, x, stack.pop())
                if i >= self.start:
                    lanes = self.fork(blocks[i], i, x, x, x0, doc)
                else:
                    x = blocks[i](x, x0, *doc)
            else:
                lane0, lane1 = lanes
                if pop:
                    lane0 = skips(j, lane0, stack.pop())
                lanes = self.step(blocks[i], i, lane0, lane1, x0, doc)
        return x if lanes is None else self.merge(*lanes)

    def extra_repr(self) -> str:
        """Show the start layer and the skip placement."""
        return f"start={self.start}, skip_placement={self.skip_placement!r}"


class SplitLaneTrunk(_LaneTrunk):
    """``split``: an attention lane and an MLP lane that never exchange, merged by ``lane_merge`` (#1477)."""

    def __init__(self, start: int, skip_placement: str = "both-lanes"):
        super().__init__(start, skip_placement)
        self.lane_merge = nn.Parameter(torch.tensor(0.5, dtype=torch.float32))

    def step(self, block, i, lane0, lane1, x0, doc):
        """``lane0 = mix(lane0) + A(mix(lane0))``, ``lane1 = lane1 + M(lane1)``."""
        a_in = block.mix_input(lane0, x0)
        return a_in + block.attn_branch(a_in, *doc), lane1 + block.mlp_branch(lane1)

    def fork(self, block, i, lane0, x, x0, doc):
        """lane1 starts from a copy of ``x``, as #1477 (the backward then sums the two lanes'
        gradients of ``x`` in the record's order, bitwise)."""
        return self.step(block, i, lane0, x.clone(), x0, doc)

    def merge(self, lane0, lane1):
        """``m*lane0 + (1-m)*lane1``."""
        m = self.lane_merge.to(lane0.dtype)
        return m * lane0 + (1.0 - m) * lane1


class RoutedLaneTrunk(_LaneTrunk):
    """``routed``: both lanes receive both branches, weighted by per-layer lambdas (#1529).

    :param num_layers: physical blocks (rows of the lambda tables).
    :param resid_init: initial ``parallel_resid_lambdas`` (1.1 in #1529's identity init).
    :param skip_placement: ``"both-lanes"`` (#1529) or ``"lane0"`` (#1530 and later).
    """

    def __init__(self, start: int, num_layers: int, resid_init: float = 1.1, skip_placement: str = "both-lanes"):
        super().__init__(start, skip_placement)
        self.parallel_post_lambdas = nn.Parameter(torch.ones(num_layers, 2, 2, dtype=torch.float32))
        self.parallel_resid_lambdas = nn.Parameter(torch.full((num_layers, 2), float(resid_init), dtype=torch.float32))

    def step(self, block, i, lane0, lane1, x0, doc):
        """``a = A(mix(lane0))``, ``m = M(lane1)``; each lane = r*lane + P[a]*a + P[m]*m."""
        a = block.attn_branch(block.mix_input(lane0, x0), *doc)
        m = block.mlp_branch(lane1)
        dt = lane0.dtype  # indexed as #1529 does, so the lambdas' gradients accumulate in its order
        r0, p_a = self.parallel_resid_lambdas[i, 0].to(dt), self.parallel_post_lambdas[i, 0].to(dt)
        r1, p_m = self.parallel_resid_lambdas[i, 1].to(dt), self.parallel_post_lambdas[i, 1].to(dt)
        return (r0 * lane0 + p_a[0] * a + p_m[0] * m,
                r1 * lane1 + p_a[1] * a + p_m[1] * m)

    def fork(self, block, i, lane0, x, x0, doc):
        """lane0 from ``lane0``, lane1 from ``x``."""
        return self.step(block, i, lane0, x, x0, doc)

    def merge(self, lane0, lane1):
        """``(lane0 + lane1) / 2``."""
        return 0.5 * (lane0 + lane1)


#: Names of the trunks' parameters: control tensors (fp32, scalar Adam, not quantized).
CONTROL_PATTERNS = ("lane_merge", "parallel_post_lambdas", "parallel_resid_lambdas")


def install_parallel(model: nn.Module, mode: str, start: int, resid_init: float = 1.1,
                     skip_placement: str = "both-lanes") -> Trunk:
    """Install the ``mode`` trunk on ``model`` (a golf ``GPT``) from physical block ``start``
    (lane modes: the first parallel block's skip placed as ``skip_placement``), and list its
    parameters in ``model.golf_control_patterns``."""
    if mode not in MODES:
        raise GolfError(f"parallel residual mode {mode!r}: expected one of {', '.join(MODES)}")
    if skip_placement not in SKIP_PLACEMENTS:
        raise GolfError(f"parallel residual skip_placement {skip_placement!r}: expected one of {', '.join(SKIP_PLACEMENTS)}")
    if mode == "gptj" and skip_placement != "both-lanes":
        raise GolfError(f"options.parallel-residuals.skip_placement = {skip_placement!r}: mode 'gptj' has one stream, no lanes")
    num_layers = model.config.num_layers
    if not 0 <= start < num_layers:
        raise GolfError(f"options.parallel-residuals.start_layer = {start}: the model has {num_layers} layers (0..{num_layers - 1})")
    if mode == "gptj":
        trunk: Trunk = GPTJTrunk(start)
    elif mode == "split":
        trunk = SplitLaneTrunk(start, skip_placement)
    else:
        trunk = RoutedLaneTrunk(start, num_layers, resid_init, skip_placement)
    device = model.tok_emb.weight.device
    model.trunk = trunk.to(device)
    patterns = tuple(getattr(model, "golf_control_patterns", ()) or ())
    model.golf_control_patterns = patterns + tuple(p for p in CONTROL_PATTERNS if p not in patterns)
    return model.trunk
