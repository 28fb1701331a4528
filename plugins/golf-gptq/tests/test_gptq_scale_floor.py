"""``scale_floor``: the #1306 lineage's step floor (openai/parameter-golf PR #1229, #1306, #1423
scales are ``clamp_min(1 / clip_range)``), against a float64 brute-force step per row."""
from __future__ import annotations

import numpy as np
import torch

from golf_gptq.quantize import GPTQConfig, gptq_quantize_state_dict


def _state():
    g = torch.Generator().manual_seed(0)
    # rows of very different spread: most steps fall under the 1/31 floor, a few above it
    w = torch.randn(96, 128, generator=g) * torch.logspace(-3, 0, 96).unsqueeze(1)
    x = torch.randn(512, 128, generator=g)
    return {"blocks.0.mlp.fc.weight": w}, {"blocks.0.mlp.fc.weight": x.T @ x}


def _expected_steps(w: torch.Tensor, k: float, floor: bool) -> np.ndarray:
    std = w.double().std(dim=1).numpy()
    step = np.maximum(k * std / 31.0, 1.0 / 31.0 if floor else 1e-10)
    return step.astype(np.float16)


def test_scale_floor_clamps_every_row_step_at_one_over_the_code_range():
    sd, H = _state()
    for floor in (False, True):
        qm = gptq_quantize_state_dict(sd, H, GPTQConfig(min_numel=0, scale_floor=floor))
        got = qm.tensors["blocks.0.mlp.fc.weight.scale"].numpy()
        want = _expected_steps(sd["blocks.0.mlp.fc.weight"], 12.85, floor)
        # fp16 steps: equal, or one fp16 ulp apart where float32 and float64 std round differently
        assert np.all(np.abs(got.astype(np.float64) - want.astype(np.float64)) <= np.spacing(want).astype(np.float64))
        floored = want == np.float16(1.0 / 31.0)
        assert (floored.sum() > 40) == floor and (~floored).sum() > 10
    q = gptq_quantize_state_dict(sd, H, GPTQConfig(min_numel=0, scale_floor=True)).tensors["blocks.0.mlp.fc.weight.q"]
    assert int(q.abs().max()) <= 31


def test_embed_gptq_off_rounds_the_embedding_rows_to_nearest():
    g = torch.Generator().manual_seed(1)
    emb = torch.randn(300, 256, generator=g) * 0.02
    x = torch.randn(400, 256, generator=g)
    H = {"tok_emb.weight": x.T @ x}
    for embed_gptq in (True, False):
        qm = gptq_quantize_state_dict({"tok_emb.weight": emb}, H, GPTQConfig(min_numel=0, scale_floor=True, embed_gptq=embed_gptq))
        q, s = qm.tensors["tok_emb.weight.q"], qm.tensors["tok_emb.weight.scale"]
        assert torch.all(s == torch.tensor(1.0 / 127).half())    # 20 * std / 127 is under the floor
        rtn = np.clip(np.round(emb.double().numpy() / s.double().numpy()[:, None]), -127, 127)
        assert np.array_equal(q.numpy(), rtn) != embed_gptq
