"""GPTConfig, parameter counts (pg_core §7.1) and parameter names (pg_core §4.4)."""
import math

import pytest
import torch
from torch import nn

from golf_core.config import ModelSection
from golf_core.errors import GolfError, RecipeError
from golf_core.model import (CONTROL_TENSOR_PATTERNS, GPT, GPTConfig, LayerSchedule, Skips, build_model,
                             count_parameters, is_scalar_param)


class GatedSkips(Skips):
    """The sigmoid-gated skip variant as a plugin would write it (pg_core §5.2)."""

    def __init__(self, num_skips, dim):
        super().__init__(num_skips, dim)
        self.skip_gates = nn.Parameter(torch.zeros(num_skips, dim))

    def forward(self, i, x, skip):
        g = torch.sigmoid(self.skip_gates[i].to(x.dtype))[None, None, :]
        return torch.lerp(self.skip_weights[i].to(x.dtype)[None, None, :] * skip, x, g)


def looped_schedule(num_layers, start, end, num_loops):
    virt = list(range(start)) + list(range(start, end + 1)) * (num_loops + 1) + list(range(end + 1, num_layers))
    n = len(virt) // 2
    return LayerSchedule(range(num_layers // 2), range(num_layers // 2, num_layers), virt[:n], virt[n:])


def test_from_section_copies_every_knob():
    sec = ModelSection(num_layers=11, mlp_mult=4.0, qk_gain_init=5.0, attention_backend="sdpa", dtype="fp32")
    cfg = GPTConfig.from_section(sec, 8192)
    assert (cfg.vocab_size, cfg.num_layers, cfg.mlp_mult, cfg.qk_gain_init) == (8192, 11, 4.0, 5.0)
    assert (cfg.attention_backend, cfg.dtype) == ("sdpa", "fp32")
    assert (cfg.head_dim, cfg.kv_dim, cfg.mlp_hidden) == (64, 256, 2048)
    assert GPTConfig.from_section(ModelSection(), 1024) == GPTConfig()


def test_bad_config_is_one_line_recipe_error():
    with pytest.raises(RecipeError) as e:
        GPTConfig(model_dim=100, num_heads=8)
    assert "num_heads" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(RecipeError):
        GPTConfig(num_heads=8, num_kv_heads=3)


def test_baseline_parameter_count_and_shapes():
    model = build_model(ModelSection(), 1024)
    assert count_parameters(model) == 17_059_912
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    assert shapes["tok_emb.weight"] == (1024, 512)
    assert shapes["skips.skip_weights"] == (4, 512)
    assert shapes["blocks.0.attn.c_q.weight"] == (512, 512)
    assert shapes["blocks.0.attn.c_k.weight"] == (256, 512)
    assert shapes["blocks.0.attn.c_v.weight"] == (256, 512)
    assert shapes["blocks.0.attn.proj.weight"] == (512, 512)
    assert shapes["blocks.0.attn.q_gain"] == (8,)
    assert shapes["blocks.0.mlp.fc.weight"] == (1024, 512)
    assert shapes["blocks.0.mlp.proj.weight"] == (512, 1024)
    assert shapes["blocks.0.resid_mix"] == (2, 512)
    # analytic count (pg_core §7.1): 9 x (1,835,008 + 2,056) + 524,288 + 2,048
    assert sum(math.prod(s) for s in shapes.values()) == 9 * (1_835_008 + 2_056) + 524_288 + 2_048
    assert len(shapes) == 2 + 9 * 10


def test_control_names_route_like_the_baseline():
    model = GPT(GPTConfig(vocab_size=32, num_layers=3, model_dim=16, num_heads=2, num_kv_heads=1))
    scalar = {n for n, p in model.named_parameters() if is_scalar_param(n, p)}
    matrix = {n for n, p in model.named_parameters() if not is_scalar_param(n, p)}
    assert "blocks.0.resid_mix" in scalar  # 2-D, but a control pattern
    assert {"skips.skip_weights", "blocks.2.attn.q_gain", "blocks.1.attn_scale", "blocks.1.mlp_scale"} <= scalar
    assert matrix == {"tok_emb.weight"} | {f"blocks.{i}.{m}.weight" for i in range(3)
                                           for m in ("attn.c_q", "attn.c_k", "attn.c_v", "attn.proj", "mlp.fc", "mlp.proj")}
    for name in ("attn_scale", "mlp_scale", "resid_mix", "q_gain", "skip_weights"):
        assert name in CONTROL_TENSOR_PATTERNS
    assert "skip_gates" not in CONTROL_TENSOR_PATTERNS  # the skip-gates plugin adds it on the model


@pytest.mark.parametrize("order", ["schedule_first", "skips_first"])
def test_pr1394_parameter_count_through_seams(order):
    """11x512, MLP 4x, sp8192, looped schedule (7 skip slots) and gated skips: 35,943,512."""
    cfg = GPTConfig.from_section(ModelSection(num_layers=11, mlp_mult=4.0, qk_gain_init=4.0), 8192)
    with torch.device("meta"):
        model = GPT(cfg)
        assert model.skips.num_skips == 5
        if order == "schedule_first":
            model.set_schedule(looped_schedule(11, 4, 5, 2))
            model.skips = GatedSkips(model.skips.num_skips, model.skips.dim)
        else:
            model.skips = GatedSkips(model.skips.num_skips, model.skips.dim)
            model.set_schedule(looped_schedule(11, 4, 5, 2))
    assert isinstance(model.skips, GatedSkips) and model.skips.num_skips == 7
    assert model.schedule.looped_encoder == (0, 1, 2, 3, 4, 5, 4)
    assert model.schedule.looped_decoder == (5, 4, 5, 6, 7, 8, 9, 10)
    assert count_parameters(model) == 35_943_512


def test_schedule_validation_and_looping_switch():
    model = GPT(GPTConfig(vocab_size=32, num_layers=3, model_dim=16, num_heads=2, num_kv_heads=1))
    with pytest.raises(GolfError):
        model.looping_active = True  # no looped layout
    with pytest.raises(GolfError):
        model.set_schedule(LayerSchedule([0, 1], [2, 3]))
    model.set_schedule(LayerSchedule([0], [1, 2], [0, 1], [1, 1, 2]))
    assert model.skips.num_skips == 2 and not model.looping_active
    model.looping_active = True
    assert model.schedule.active() == ((0, 1), (1, 1, 2)) and model.schedule.block_applications() == 5


def test_flops_per_token_match_pg_core_section_7():
    from golf_core.model import flops_per_token, matmul_params_per_token

    with torch.device("meta"):
        base = build_model(ModelSection(), 1024)
        assert matmul_params_per_token(base) == 9 * 1_835_008 + 524_288
        assert flops_per_token(base, 1024) == 130_547_712              # 130.55 MFLOP/token
        rec = GPT(GPTConfig.from_section(ModelSection(num_layers=11, mlp_mult=4.0), 8192))
        rec.set_schedule(looped_schedule(11, 4, 5, 2))
        rec.skips = GatedSkips(rec.skips.num_skips, rec.skips.dim)
    assert matmul_params_per_token(rec) == 35_913_728
    assert flops_per_token(rec, 2048) == 215_482_368 + 69_206_016      # 284.69 MFLOP/token
    assert flops_per_token(rec, 2048, causal=False) == 215_482_368 + 138_412_032
    rec.looping_active = True
    assert matmul_params_per_token(rec) == 47_448_064
    assert flops_per_token(rec, 2048) == 284_688_384 + 94_371_840     # 379.06 MFLOP/token
    assert flops_per_token(rec, 2048, causal=False) == 284_688_384 + 188_743_680
    assert flops_per_token(rec, 2048, training=False) == (284_688_384 + 94_371_840) // 3
    # sliding eval, pg_core §7.3: 2*47,448,064 + 15*2*2048*512 per forward position
    assert flops_per_token(rec, 2048, training=False) == 2 * 47_448_064 + 15 * 2 * 2048 * 512


def test_describe_seams_is_json_able():
    import json

    from golf_core.model import describe_seams

    model = GPT(GPTConfig(vocab_size=32, num_layers=3, model_dim=16, num_heads=2, num_kv_heads=1))
    model.skips = GatedSkips(model.skips.num_skips, model.skips.dim)
    d = json.loads(json.dumps(describe_seams(model)))
    assert d["skips"] == "GatedSkips" and d["num_skips"] == 1 and d["attention_backend"] == "sdpa"
    assert d["schedule"]["encoder"] == [0] and d["out_transform"] == ["IdentityOutput"] * 3
    assert d["rotary"] == ["Rotary(rope_dims=8)"] * 3 and d["mlp_activation"] == ["ReLUSquared"] * 3
    assert d["mlp_fused"] == [None] * 3 and d["fused_ce"] is False


def test_every_public_name_has_a_docstring():
    import inspect

    import golf_core.model as pkg

    missing = []
    for name in pkg.__all__:
        obj = getattr(pkg, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            if not (obj.__doc__ or "").strip():
                missing.append(name)
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if not attr.startswith("_") and (inspect.isfunction(member) or isinstance(member, property)):
                        if not (member.__doc__ or "").strip():
                            missing.append(f"{name}.{attr}")
    assert missing == []
