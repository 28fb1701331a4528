"""What golf must do exactly as the records do (openai/parameter-golf PR #1394 train_gpt.py):
parameter order, the gradient clip's summation order, fused Adam, the DDP compile flag, and the
logged parameter count that ``golf validate`` prints for every record recipe."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from golf_core import tomlio
from golf_core.cli import main
from golf_core.config import TrainSection
from golf_core.model import GPT, GPTConfig
from golf_core.train.loop import configure_dynamo_for_ddp
from golf_core.train.optim import build_optimizers

REPO = Path(__file__).resolve().parent.parent
RECIPES = sorted((REPO / "recipes").glob("*.toml"))


def _model(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=96, num_layers=4, model_dim=32, num_heads=4, num_kv_heads=2))


def _with_grads(model: GPT, seed: int = 1) -> None:
    g = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        # magnitudes spread over 6 decades, so the norm's summation order shows in its last bits
        p.grad = torch.randn(p.shape, generator=g) * 10.0 ** torch.randint(-3, 3, (), generator=g).item()


def test_parameter_order_puts_skip_weights_before_the_embedding():
    """The records' skip tensors are GPT's own parameters, which parameters() yields first."""
    names = [n for n, _ in _model().named_parameters()]
    assert names[:2] == ["skips.skip_weights", "tok_emb.weight"]
    assert names[2].startswith("blocks.0.")


def test_clip_sums_in_model_parameter_order():
    model = _model()
    opt = build_optimizers(model, TrainSection(grad_clip_norm=0.3))
    assert [id(p) for p in opt.clip_params()] == [id(p) for p in model.parameters()]
    # group order differs from parameters() order (the embedding group comes first)
    assert [id(p) for p in opt.params()] != [id(p) for p in model.parameters()]


def test_clip_total_norm_is_the_records_arithmetic():
    """The returned norm equals a float64 brute-force norm over parameters() to rounding, and the
    clipped gradients equal, bit for bit, ``clip_grad_norm_(model.parameters())`` on a copy."""
    model, ref = _model(), _model()
    _with_grads(model)
    _with_grads(ref)
    opt = build_optimizers(model, TrainSection(grad_clip_norm=0.3))
    brute = sum(float((p.grad.double() ** 2).sum()) for p in model.parameters()) ** 0.5
    total = opt.clip_grads()
    assert abs(float(total) - brute) <= 2e-6 * brute
    ref_total = torch.nn.utils.clip_grad_norm_(ref.parameters(), 0.3)
    assert torch.equal(total, ref_total)
    for p, q in zip(model.parameters(), ref.parameters()):
        assert torch.equal(p.grad, q.grad)
    clipped = sum(float((p.grad.double() ** 2).sum()) for p in model.parameters()) ** 0.5
    assert clipped == pytest.approx(0.3, rel=1e-5)


def test_clip_keeps_parameters_only_an_optimizer_holds():
    model = _model()
    opt = build_optimizers(model, TrainSection(grad_clip_norm=1.0))
    extra = torch.nn.Parameter(torch.zeros(3))
    opt.add("extra", torch.optim.SGD([extra], lr=0.1))
    assert opt.clip_params()[-1] is extra and len(opt.clip_params()) == len(list(model.parameters())) + 1


def test_fused_adam_is_requested_on_cpu():
    opt = build_optimizers(_model(), TrainSection(adam_wd=0.02, embed_wd=0.085))
    adams = [o for name, o in opt.items() if name != "muon"]
    assert adams and all(o.defaults["fused"] is True for o in adams)


def test_ddp_compile_flag_is_the_records():
    saved = torch._dynamo.config.optimize_ddp
    try:
        torch._dynamo.config.optimize_ddp = True
        configure_dynamo_for_ddp(False)
        assert torch._dynamo.config.optimize_ddp is True
        configure_dynamo_for_ddp(True)
        assert torch._dynamo.config.optimize_ddp is False
    finally:
        torch._dynamo.config.optimize_ddp = saved


def _record_recipes() -> list[Path]:
    """Recipes of a record ("openai/parameter-golf PR #N", the naive baseline's "openai/parameter-golf
    train_gpt.py") or of its legal counterpart ("golf: PR #N ...")."""
    src = {p: tomlio.load_file(p).get("meta", {}).get("source", "") for p in RECIPES}
    return [p for p, s in src.items() if s.startswith(("openai/parameter-golf PR #", "openai/parameter-golf train_gpt.py", "golf: PR #"))]


def test_every_record_recipe_carries_the_logged_parameter_count():
    recs = _record_recipes()
    assert {p.stem for p in recs} >= {"baseline", "pr1394", "pr1413", "pr1229", "pr1306", "pr1306-causal", "pr1423", "pr1423-legal"}
    for p in recs:
        assert isinstance(tomlio.load_file(p)["meta"].get("model_params"), int), p.name


@pytest.mark.parametrize("name,logged,verdict", [
    ("baseline", 17059912, "equal"),  # records/track_10min_16mb/2026-03-17_NaiveBaseline train.log
    ("pr1394", 35943512, "equal"), ("pr1413", 35943512, "equal"),
    ("pr1229", 26996316, "golf -492036"), ("pr1306", 26993756, "golf -492036"), ("pr1306-causal", 26993756, "golf -492036"),
    ("pr1423", 35941976, "golf +1536"), ("pr1423-legal", 35941976, "golf +1536"),
])
def test_validate_prints_the_records_logged_parameter_count(capsys, name, logged, verdict):
    assert main(["validate", str(REPO / "recipes" / f"{name}.toml")]) == 0
    assert f"record model_params: {logged} ({verdict})" in capsys.readouterr().out.splitlines()
