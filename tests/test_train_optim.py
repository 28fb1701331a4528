"""The baseline's optimizer groups (pg_core.md §4.4) and the OptimizerSet."""
from __future__ import annotations

import pytest
import torch

from golf_core.config import ModelSection, TrainSection
from golf_core.errors import GolfError
from golf_core.model import GPT, GPTConfig
from golf_core.train.muon import Muon
from golf_core.train.optim import CONTROL_TENSOR_PATTERNS, OptimizerSet, build_optimizers, control_patterns


def _model(layers=3, tie=True):
    torch.manual_seed(0)
    return GPT(GPTConfig.from_section(
        ModelSection(num_layers=layers, model_dim=32, num_heads=4, num_kv_heads=2, tie_embeddings=tie), 64))


def _names(model, opt):
    by_id = {id(p): n for n, p in model.named_parameters()}
    return {name: sorted(by_id[id(p)] for g in o.param_groups for p in g["params"]) for name, o in opt.items()}


def test_baseline_groups_for_the_baseline_model():
    model = _model(layers=3)
    t = TrainSection()
    opt = build_optimizers(model, t)
    assert opt.names() == ["embed", "muon", "scalar"]          # the baseline's step order
    names = _names(model, opt)
    assert names["embed"] == ["tok_emb.weight"]
    matrices = [f"blocks.{i}.{m}.weight" for i in range(3)
                for m in ("attn.c_q", "attn.c_k", "attn.c_v", "attn.proj", "mlp.fc", "mlp.proj")]
    assert names["muon"] == sorted(matrices)
    scalars = ["skips.skip_weights"] + [f"blocks.{i}.{s}" for i in range(3)
                                         for s in ("attn_scale", "mlp_scale", "resid_mix", "attn.q_gain")]
    assert names["scalar"] == sorted(scalars)
    # resid_mix is 2-D but a control tensor: scalar Adam, not Muon
    assert dict(model.named_parameters())["blocks.0.resid_mix"].ndim == 2
    assert isinstance(opt["muon"], Muon)
    assert type(opt["embed"]) is torch.optim.Adam and type(opt["scalar"]) is torch.optim.Adam
    # learning rates and hyperparameters of pg_core.md §4.1
    assert opt["embed"].param_groups[0]["base_lr"] == 0.05
    assert opt["muon"].param_groups[0]["base_lr"] == 0.04
    assert opt["muon"].param_groups[0]["momentum"] == 0.95
    assert opt["muon"].param_groups[0]["backend_steps"] == 5
    assert opt["scalar"].param_groups[0]["base_lr"] == 0.04
    for name in ("embed", "scalar"):
        g = opt[name].param_groups[0]
        assert g["betas"] == (0.9, 0.95) and g["eps"] == 1e-8 and g["weight_decay"] == 0.0
    assert opt.grad_clip_norm == 0.0
    opt.check_covers(model)


def test_untied_head_gets_its_own_adam_and_embed_lr():
    model = _model(tie=False)
    opt = build_optimizers(model, TrainSection())
    assert opt.names() == ["embed", "head", "muon", "scalar"]
    assert _names(model, opt)["head"] == ["lm_head.weight"]
    assert opt["embed"].param_groups[0]["lr"] == 0.6
    assert opt["head"].param_groups[0]["lr"] == 0.008


def test_weight_decay_switches_to_adamw():
    opt = build_optimizers(_model(), TrainSection(adam_wd=0.02, embed_wd=0.085, grad_clip_norm=0.3))
    assert type(opt["embed"]) is torch.optim.AdamW and opt["embed"].param_groups[0]["weight_decay"] == 0.085
    assert type(opt["scalar"]) is torch.optim.AdamW and opt["scalar"].param_groups[0]["weight_decay"] == 0.02
    assert opt.grad_clip_norm == 0.3


def test_model_can_extend_control_patterns():
    model = _model()
    assert control_patterns(model) == CONTROL_TENSOR_PATTERNS
    model.golf_control_patterns = ("mlp.proj",)
    assert control_patterns(model)[-1] == "mlp.proj"
    names = _names(model, build_optimizers(model, TrainSection()))
    assert "blocks.0.mlp.proj.weight" in names["scalar"] and "blocks.0.mlp.proj.weight" not in names["muon"]


def test_params_outside_blocks_go_to_scalar_adam():
    model = _model()
    model.skip_gates = torch.nn.Parameter(torch.zeros(2, 32))
    model.extra_table = torch.nn.Parameter(torch.zeros(5, 32))
    names = _names(model, build_optimizers(model, TrainSection()))
    assert "skip_gates" in names["scalar"] and "extra_table" in names["scalar"]


def test_frozen_params_are_left_out_and_coverage_is_checked():
    model = _model()
    model.blocks[0].attn_scale.requires_grad_(False)
    opt = build_optimizers(model, TrainSection())
    opt.check_covers(model)
    model.blocks[0].attn_scale.requires_grad_(True)
    with pytest.raises(GolfError, match="blocks.0.attn_scale"):
        opt.check_covers(model)


def test_lr_mul_and_momentum_setters():
    model = _model()
    opt = build_optimizers(model, TrainSection())
    opt.set_lr_mul(0.25)
    assert opt["embed"].param_groups[0]["lr"] == pytest.approx(0.0125)
    assert opt["muon"].param_groups[0]["lr"] == pytest.approx(0.01)
    opt.set_muon_momentum(0.9)
    assert opt["muon"].param_groups[0]["momentum"] == 0.9
    assert "momentum" not in opt["embed"].param_groups[0]


def test_state_dict_roundtrip_and_name_mismatch():
    model = _model()
    opt = build_optimizers(model, TrainSection())
    loss = model(torch.randint(0, 64, (2, 8)), torch.randint(0, 64, (2, 8)))
    loss.backward()
    opt.step()
    sd = opt.state_dict()
    opt2 = build_optimizers(model, TrainSection())
    opt2.load_state_dict(sd)
    p = model.tok_emb.weight
    assert torch.equal(opt2["embed"].state[p]["exp_avg"], opt["embed"].state[p]["exp_avg"])
    opt3 = OptimizerSet({"embed": opt2["embed"]})
    with pytest.raises(GolfError, match="optimizer state"):
        opt3.load_state_dict(sd)


def test_added_optimizer_gets_base_lr():
    p = torch.nn.Parameter(torch.zeros(3))
    s = OptimizerSet()
    s.add("extra", torch.optim.SGD([p], lr=0.5))
    s.set_lr_mul(0.5)
    assert s["extra"].param_groups[0]["lr"] == 0.25
