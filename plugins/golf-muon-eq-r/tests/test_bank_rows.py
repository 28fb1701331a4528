"""MuonEq-R under ``[train] muon_arithmetic = "banks"`` (the banked Parallel Muon of PR #1529 on:
#1530, #1729-#1855): the bf16 Nesterov update is divided by its fp32 row norms rounded to bf16,
checked against a reference written from that arithmetic over 3-D banks."""
from __future__ import annotations

import pytest
import torch

from golf_core.api import Muon
from golf_core.train.muon import zeropower_via_newtonschulz5
from golf_muon_eq_r import configure_muon_eq_r, row_normalize

LR, MOM = 0.026, 0.97


def _reference_step(bank: torch.Tensor, grad: torch.Tensor, buf: torch.Tensor, divide_in_bf16: bool) -> None:
    g = grad.bfloat16()
    buf.mul_(MOM).add_(g)
    u = g.add(buf, alpha=MOM)
    rn = u.float().norm(dim=-1, keepdim=True).clamp_min(1e-7)
    u = u / (rn.to(u.dtype) if divide_in_bf16 else rn)
    x = torch.stack([zeropower_via_newtonschulz5(m, batched=True) for m in u])
    bank.add_(x.float(), alpha=-LR * max(1.0, bank.size(-2) / bank.size(-1)) ** 0.5)


@pytest.mark.parametrize("shape", [(48, 32), (32, 48)])
def test_bank_rows_divide_in_bf16_as_the_banked_records(shape):
    gen = torch.Generator().manual_seed(7)
    params = [torch.nn.Parameter(torch.randn(shape, generator=gen)) for _ in range(3)]
    muon = Muon(params, lr=LR, momentum=MOM, bank_arithmetic=True)
    configure_muon_eq_r(muon, weight_decay=0.0, momentum=MOM, momentum_warmup_start=MOM, momentum_warmup_steps=1)
    want = torch.stack([p.detach().clone() for p in params])
    other = want.clone()
    bufs = [torch.zeros(want.shape, dtype=torch.bfloat16) for _ in range(2)]
    for _ in range(3):
        grads = torch.randn(want.shape, generator=gen) * torch.logspace(-3, 1, shape[0])[:, None]
        for p, gr in zip(params, grads):
            p.grad = gr.clone()
        muon.step()
        _reference_step(want, grads, bufs[0], True)
        _reference_step(other, grads, bufs[1], False)
        got = torch.stack([p.detach() for p in params])
        assert torch.equal(got, want)
    assert not torch.equal(want, other)  # an fp32 division rounds otherwise: the test can tell


def test_row_normalize_keeps_float_updates_exact():
    g = torch.randn(9, 5, dtype=torch.float64)
    assert torch.equal(row_normalize(g), g / g.norm(dim=-1, keepdim=True))
    assert row_normalize(g.bfloat16()).dtype == torch.bfloat16
