"""Golf's side of a parity check against a record's own ``train_gpt.py`` (see bench/parity.md).

Builds a recipe's model on CPU under the recipe's seed, exactly as ``golf run`` does, and writes
what a record-side script compares against: parameter names/shapes/count, the initial weights,
fp32 and fp64 logits (looping off and on) for fixed token ids, the parameters after 3 optimizer
steps of golf's own stepper on fixed batches, and the lr / momentum schedules. The record side is
never part of golf (its code stays outside the repository); bench/parity.md says how to run it.

    OMP_NUM_THREADS=1 python bench/parity_golf_side.py recipes/pr1394.toml --out /tmp/golf_pr1394.pt \\
        [--set model.num_layers=6 ...] [--tokens 4x64] [--steps 3] [--lr-mul 0.7]
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, write_result  # noqa: E402


def build(recipe_ref: str, overrides: list[str]):
    """(model, recipe, plugins, ctx): the recipe's model on CPU in fp32, seeded as ``golf run``."""
    from golf_core.context import RunContext
    from golf_core.run import build_model
    from golf_core.plugins import activate
    from golf_core.recipe import load_recipe
    from golf_core.train.rng import seed_everything

    recipe = load_recipe(recipe_ref, overrides=[*overrides, "train.device=cpu", "model.dtype=fp32"])
    plugins = activate(recipe)
    ctx = RunContext(recipe=recipe, plugins=plugins, device=torch.device("cpu"))
    seed_everything(recipe.train.seed)
    return build_model(recipe, plugins, ctx), recipe, plugins, ctx


def logits_both_layouts(model, ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """fp32 and fp64 logits with the looped layout off and on (when the model has one)."""
    out = {}
    loops = (False, True) if hasattr(model, "looping_active") else (False,)
    for loop in loops:
        for name, m in (("fp32", model), ("fp64", copy.deepcopy(model).double())):
            m.looping_active = loop
            with torch.no_grad():
                out[f"logits_{name}_loop{int(loop)}"] = m.forward_logits(ids).detach().clone()
    model.looping_active = False
    return out


def three_steps(model, ctx, batches, lr_mul: float) -> list[dict[str, torch.Tensor]]:
    """Parameters after each of golf's optimizer steps (``_Stepper``: the run's own step)."""
    from golf_core.train.loop import _Stepper, configure_optimizers
    from golf_core.train.schedule import MomentumWarmup

    opt = configure_optimizers(model, ctx, compile_ns=False)
    it = iter(batches)

    class Fixed:
        def next_batch(self, *_):
            return next(it)

    seq = batches[0][0].shape[1]
    stepper = _Stepper(model, opt, ctx, 1, batches[0][0].numel(), seq)
    mom = MomentumWarmup.from_section(ctx.recipe.train)
    out, loader = [], Fixed()
    for step in range(len(batches)):
        stepper(loader, lr_mul, mom(step))
        out.append({n: p.detach().clone() for n, p in model.named_parameters()})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("recipe")
    ap.add_argument("--out", required=True, help="where to write the tensors (.pt)")
    ap.add_argument("--set", action="append", default=[], help="recipe override, e.g. model.num_layers=6")
    ap.add_argument("--tokens", default="4x64", help="BxT of the fixed token ids")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--lr-mul", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=5, help="seed of the token ids and batches (not the model)")
    a = ap.parse_args(argv)
    from golf_core.train.schedule import LRSchedule, MomentumWarmup

    model, recipe, _, ctx = build(a.recipe, a.set)
    b, t = (int(v) for v in a.tokens.split("x"))
    v = recipe.data.vocab_size
    g = torch.Generator().manual_seed(a.seed)
    ids = torch.randint(0, v, (b, t), generator=g)
    batches = [(torch.randint(0, v, (b, t), generator=g), torch.randint(0, v, (b, t), generator=g)) for _ in range(a.steps)]
    init = {n: p.detach().clone() for n, p in model.named_parameters()}
    dump = {
        "names": [n for n, _ in model.named_parameters()],
        "shapes": [tuple(p.shape) for p in model.parameters()],
        "params": sum(p.numel() for p in model.parameters()),
        "init": init, "ids": ids, "batches": batches,
        **logits_both_layouts(model, ids),
        "steps": three_steps(model, ctx, batches, a.lr_mul),
    }
    sched, mom = LRSchedule.from_section(recipe.train), MomentumWarmup.from_section(recipe.train)
    cap = sched.cap_s or 1.0
    dump["lr_mul"] = torch.tensor([sched(100, f / 1000 * cap) for f in range(1051)], dtype=torch.float64)
    dump["momentum"] = torch.tensor([mom(s) for s in range(3001)], dtype=torch.float64)
    torch.save(dump, a.out)
    summary = {"env": environment(torch.device("cpu")), "recipe": str(a.recipe), "overrides": a.set, "params": dump["params"], "out": a.out,
               "init_std": {n: float(p.float().std()) if p.numel() > 1 else 0.0 for n, p in init.items() if p.ndim == 2}}
    print(json.dumps({k: summary[k] for k in ("recipe", "params", "out")}))
    write_result(f"parity_golf_side-{Path(a.recipe).stem}", summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
