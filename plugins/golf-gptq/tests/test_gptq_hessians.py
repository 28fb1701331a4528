"""Hessian collection: linear inputs and the final norm's output for a tied embedding."""
from __future__ import annotations

import torch
from torch import nn

from golf_gptq import collect_hessians, hessian_targets


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.l1 = nn.Linear(16, 32, bias=False)
        self.l2 = nn.Linear(32, 16, bias=False)

    def forward(self, x):
        return self.l2(torch.relu(self.l1(self.emb(x))))


def test_linear_inputs_by_hand():
    torch.manual_seed(0)
    m = Toy()
    batches = [torch.randint(0, 50, (3, 7)) for _ in range(4)]
    H = collect_hessians(m, batches, min_numel=0)
    assert set(H) == {"l1.weight", "l2.weight"}
    with torch.no_grad():
        h1 = sum((m.emb(b).reshape(-1, 16).double().T @ m.emb(b).reshape(-1, 16).double()) for b in batches) / 4
        a = [torch.relu(m.l1(m.emb(b))).reshape(-1, 32).double() for b in batches]
        h2 = sum(x.T @ x for x in a) / 4
    assert torch.allclose(H["l1.weight"].double(), h1, rtol=1e-5, atol=1e-5)
    assert torch.allclose(H["l2.weight"].double(), h2, rtol=1e-5, atol=1e-5)
    assert "l1.weight" not in hessian_targets(m, min_numel=16 * 32)


def test_tied_embedding_uses_final_norm_output():
    from golf_core.config import ModelSection
    from golf_core.model import build_model

    torch.manual_seed(1)
    m = build_model(ModelSection(num_layers=2, model_dim=32, num_heads=4, num_kv_heads=2), 64)
    batches = [torch.randint(0, 64, (2, 16)) for _ in range(3)]
    H = collect_hessians(m, batches, min_numel=0)
    assert "tok_emb.weight" in H and "blocks.0.attn.c_q.weight" in H and "blocks.1.mlp.proj.weight" in H
    with torch.no_grad():
        ref = sum(m.forward_hidden(b).reshape(-1, 32).double().T @ m.forward_hidden(b).reshape(-1, 32).double()
                  for b in batches) / 3
    assert torch.allclose(H["tok_emb.weight"].double(), ref, rtol=1e-5, atol=1e-5)
    assert H["blocks.1.mlp.proj.weight"].shape == (64, 64)
    assert m.training  # mode restored


def test_calibration_hessians_ignore_the_runs_autocast():
    """#1394 collects Hessians on its bf16 model without autocast. Given a context whose autocast
    is a real (CPU bf16) autocast, the flow's Hessians equal those collected with none, and
    differ from those collected under it (so the test can tell)."""
    from types import SimpleNamespace

    from golf_gptq.flow import calibration_hessians
    from golf_gptq.options import GPTQOptions

    torch.manual_seed(2)
    m = Toy()
    batches = [torch.randint(0, 50, (3, 7)) for _ in range(3)]
    used = []

    def autocast():
        used.append(True)
        return torch.autocast("cpu", dtype=torch.bfloat16)

    ctx = SimpleNamespace(autocast=autocast, device=torch.device("cpu"))
    got = calibration_hessians(m, batches, ctx, GPTQOptions(min_numel=0))
    plain = collect_hessians(m, batches, min_numel=0)
    assert not used  # the flow never entered the run's autocast
    under = collect_hessians(m, batches, min_numel=0, autocast=autocast)
    assert set(got) == set(plain) and all(torch.equal(got[k], plain[k]) for k in got)
    assert not torch.equal(under["l2.weight"], plain["l2.weight"])


def test_calibration_without_the_document_mask_attends_over_whole_rows():
    """``calibration_document_mask = false`` (#1530-#1855: ``forward_logits(x)`` without
    ``cu_seqlens``): the Hessians are those of the same model with no mask, differ from the
    masked ones past the first attention, and the mask is back afterwards."""
    from types import SimpleNamespace

    from golf_core.config import ModelSection
    from golf_core.api import DocumentMask
    from golf_core.model import build_model
    from golf_gptq.flow import calibration_hessians
    from golf_gptq.options import GPTQOptions

    torch.manual_seed(3)
    m = build_model(ModelSection(num_layers=2, model_dim=32, num_heads=4, num_kv_heads=2), 64)
    batches = [torch.randint(2, 64, (2, 16)) for _ in range(2)]
    for b in batches:
        b[:, 5] = 1  # a document starts mid-row
    mask = DocumentMask(bos_id=1, max_len=16)
    m.set_document_mask(mask)
    ctx = SimpleNamespace(autocast=None, device=torch.device("cpu"))
    masked = calibration_hessians(m, batches, ctx, GPTQOptions(min_numel=0))
    lifted = calibration_hessians(m, batches, ctx, GPTQOptions(min_numel=0, calibration_document_mask=False))
    assert m.document_mask is mask
    m.set_document_mask(None)
    plain = collect_hessians(m, batches, min_numel=0)
    assert all(torch.equal(lifted[k], plain[k]) for k in plain)
    assert torch.equal(masked["blocks.0.attn.c_q.weight"], plain["blocks.0.attn.c_q.weight"])  # before any attention
    assert not torch.equal(masked["blocks.0.attn.proj.weight"], plain["blocks.0.attn.proj.weight"])
