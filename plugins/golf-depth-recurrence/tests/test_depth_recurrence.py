"""depth-recurrence: virtual layer lists, skip pairing, activation, untied passes, state."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from golf_core import GolfError, Stash
from golf_core.model import GPT, GPTConfig, count_parameters
from golf_core.recipe import load_recipe_text
from golf_depth_recurrence import (
    ProgressiveSchedule, progressive_stages,
    SharedLastSlotSkips, UntiedPass, loop_virtual_layers, repeat_virtual_layers, skip_pairs, split_halves,
)
from golf_depth_recurrence import plugin
from golf_depth_recurrence.plugin import DepthRecurrenceOptions as Opts


# ---- helpers -------------------------------------------------------------------------------

class FakeLog:
    def __init__(self):
        self.lines, self.metrics = [], []

    def info(self, msg):
        self.lines.append(msg)

    def metric(self, **kw):
        self.metrics.append(kw)


def fake_ctx():
    return SimpleNamespace(stash=Stash(), log=FakeLog())


def progress(step, frac):
    return SimpleNamespace(step=step, frac=frac, elapsed_s=float(step), lr_mul=1.0)


def make_model(layers=11, dim=32, mlp_mult=2.0, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=64, num_layers=layers, model_dim=dim, num_heads=4, num_kv_heads=2, mlp_mult=mlp_mult))


def wake(model, std=0.2):
    """Zero-init projections make every block an identity; give every matrix random values."""
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.ndim == 2 and "skip" not in n and "resid_mix" not in n and "tok_emb" not in n:
                p.normal_(std=std)
            elif "skip_weights" in n:
                p.uniform_(0.5, 1.5)
    return model


def built(opts=None, **kw):
    model = make_model(**kw)
    plugin.golf_build_model(model, opts or Opts())
    return model


# ---- virtual layer lists (techniques.md §2a, §2b) --------------------------------------------

def test_virtual_lists_1394_form():
    v = loop_virtual_layers(11, 2, 4, 5)
    assert len(v) == 15
    assert split_halves(v) == ([0, 1, 2, 3, 4, 5, 4], [5, 4, 5, 6, 7, 8, 9, 10])
    v = loop_virtual_layers(11, 2, 3, 5)
    assert len(v) == 17
    assert split_halves(v) == ([0, 1, 2, 3, 4, 5, 3, 4], [5, 3, 4, 5, 6, 7, 8, 9, 10])


def test_virtual_list_1204_form():
    v = repeat_virtual_layers(11, [5, 4])
    assert v == [0, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 10]
    assert split_halves(v) == ([0, 1, 2, 3, 4, 5], [4, 5, 6, 7, 8, 9, 10])


@pytest.mark.parametrize("start,enc,dec", [
    (4, [0, 1, 2, 3, 4, 5, 4], [5, 4, 5, 6, 7, 8, 9, 10]),
    (3, [0, 1, 2, 3, 4, 5, 3, 4], [5, 3, 4, 5, 6, 7, 8, 9, 10]),
])
def test_installed_schedule(start, enc, dec):
    model = built(Opts(loop_start=start))
    s = model.schedule
    assert (list(s.encoder), list(s.decoder)) == ([0, 1, 2, 3, 4], [5, 6, 7, 8, 9, 10])
    assert (list(s.looped_encoder), list(s.looped_decoder)) == (enc, dec)
    assert model.skips.num_skips == min(len(enc), len(dec))
    assert not model.looping_active
    assert len(model.blocks) == 11


# ---- skip pairing observed with hooks ----------------------------------------------------------

def observed_pairs(model, ids):
    """Run a forward and read, from hooks only, which encoder block's output each decoder block
    receives through the skips (None when none), in decoder order."""
    events = []
    hooks = [b.register_forward_hook(lambda m, a, out, i=i: events.append(("block", i, out)))
             for i, b in enumerate(model.blocks)]
    hooks.append(model.skips.register_forward_hook(lambda m, a, out: events.append(("skip", a[0], a[2]))))
    try:
        with torch.no_grad():
            model.forward_logits(ids)
    finally:
        for h in hooks:
            h.remove()
    enc_len = len(model.schedule.active()[0])
    blocks = [e for e in events if e[0] == "block"]
    encoder_outputs = blocks[:enc_len]
    pairs, slots, pending = [], [], None
    seen_blocks = 0
    for e in events:
        if e[0] == "skip":
            src = [i for (_, i, out) in encoder_outputs if out is e[2]]
            assert len(src) == 1
            pending = src[0]
            slots.append(e[1])
        else:
            seen_blocks += 1
            if seen_blocks > enc_len:
                pairs.append((e[1], pending))
            pending = None
    return pairs, slots


def test_skip_pairing_looping_on_and_off():
    model = wake(built())
    ids = torch.randint(0, 64, (2, 8))
    pairs, slots = observed_pairs(model, ids)
    assert pairs == [(5, 4), (6, 3), (7, 2), (8, 1), (9, 0), (10, None)]
    assert slots == [0, 1, 2, 3, 4]
    model.looping_active = True
    pairs, slots = observed_pairs(model, ids)
    assert pairs == [(5, 4), (4, 5), (5, 4), (6, 3), (7, 2), (8, 1), (9, 0), (10, None)]
    assert slots == list(range(7))
    # the pure-function helper agrees with the hooks
    s = model.schedule
    assert skip_pairs(s.looped_encoder, s.looped_decoder, 7) == pairs


# ---- the looped forward equals an independent loop ----------------------------------------------

def reference_logits(model, ids, virtual, slot_of=lambda j: j, num_skips=None):
    """Independent forward: embed, run blocks over the virtual list's halves, LIFO skips with
    the plain weighted add, final norm, tied soft-capped logits."""
    enc, dec = virtual[: len(virtual) // 2], virtual[len(virtual) // 2:]
    num_skips = num_skips if num_skips is not None else min(len(enc), len(dec))
    w = model.skips.inner.skip_weights if isinstance(model.skips, SharedLastSlotSkips) else model.skips.skip_weights
    E = model.tok_emb.weight
    x = F.rms_norm(E[ids], (E.size(1),))
    x0, stack = x, []
    for i in enc:
        x = model.blocks[i](x, x0)
        stack.append(x)
    for j, i in enumerate(dec):
        if j < num_skips and stack:
            x = x + w[slot_of(j)][None, None, :] * stack.pop()
        x = model.blocks[i](x, x0)
    h = F.rms_norm(x, (x.size(-1),))
    return 30.0 * torch.tanh(h @ E.T / 30.0)


@pytest.mark.parametrize("start", [4, 3])
def test_looped_forward_equals_independent_loop(start):
    model = wake(built(Opts(loop_start=start))).double()
    ids = torch.randint(0, 64, (2, 9))
    model.looping_active = True
    with torch.no_grad():
        got = model.forward_logits(ids)
        ref = reference_logits(model, ids, loop_virtual_layers(11, 2, start, 5))
        plain = reference_logits(model, ids, list(range(11)))
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)
    assert not torch.allclose(got, plain)
    model.looping_active = False
    with torch.no_grad():
        torch.testing.assert_close(model.forward_logits(ids), plain, rtol=1e-10, atol=1e-10)


# ---- activation ---------------------------------------------------------------------------------

@pytest.mark.parametrize("enable_at", [0.5, 0.35])
def test_activation_at_the_fraction(enable_at):
    opts = Opts(enable_at=enable_at)
    model, ctx = built(opts), fake_ctx()
    plugin.golf_on_train_start(model, ctx, opts)
    for step, frac in [(1, 0.0), (10, enable_at - 0.01)]:
        plugin.golf_on_step_end(model, progress(step, frac), ctx, opts)
        assert not model.looping_active
    plugin.golf_on_step_end(model, progress(11, enable_at), ctx, opts)
    assert model.looping_active
    assert ctx.log.lines == [f"layer_loop:enabled step:11 frac:{enable_at:.3f}"]
    plugin.golf_on_step_end(model, progress(12, 0.9), ctx, opts)
    assert len(ctx.log.lines) == 1
    result = {}
    plugin.golf_summary(result, ctx, opts)
    assert result["depth-recurrence"]["enabled_step"] == 11


def test_on_after_training_and_on_artifact_load():
    opts = Opts(enable_at=0.9)
    model, ctx = built(opts), fake_ctx()
    plugin.golf_on_train_start(model, ctx, opts)
    plugin.golf_on_step_end(model, progress(5, 0.5), ctx, opts)
    assert not model.looping_active
    plugin.golf_on_train_end(model, ctx, opts)
    assert model.looping_active
    fresh = built(opts)
    assert plugin.golf_on_artifact_load(fresh, fake_ctx(), opts) is fresh
    assert fresh.looping_active


def test_compile_warmup_enter_exit():
    opts = Opts()
    model, ctx = built(opts), fake_ctx()
    calls = plugin.golf_compile_warmup(model, ctx, opts)
    assert len(calls) == 1
    undo = calls[0](model)
    assert model.looping_active
    undo()
    assert not model.looping_active


@pytest.mark.parametrize("load_first", [False, True])
def test_checkpoint_state_roundtrip(load_first):
    opts = Opts()
    model, ctx = built(opts), fake_ctx()
    plugin.golf_on_train_start(model, ctx, opts)
    assert plugin.golf_state_dict(ctx, opts)["looping_active"] is False
    plugin.golf_on_step_end(model, progress(7, 0.6), ctx, opts)
    state = plugin.golf_state_dict(ctx, opts)
    assert state["looping_active"] is True and state["enabled_step"] == 7
    resumed, ctx2 = built(opts), fake_ctx()
    if load_first:
        plugin.golf_load_state_dict(state, ctx2, opts)
        plugin.golf_on_train_start(resumed, ctx2, opts)
    else:
        plugin.golf_on_train_start(resumed, ctx2, opts)
        plugin.golf_load_state_dict(state, ctx2, opts)
    assert resumed.looping_active
    plugin.golf_on_step_end(resumed, progress(8, 0.61), ctx2, opts)
    assert ctx2.log.lines == []


# ---- #1204 form ---------------------------------------------------------------------------------

def test_step_mode_slots_shared_like_1204():
    opts = Opts(mode="step", recur_layers=[4, 5], start_step=3)
    model = wake(built(opts))
    assert isinstance(model.skips, SharedLastSlotSkips)
    assert model.skips.num_skips == 6 and model.skips.inner.num_skips == 5
    assert count_parameters(model) == count_parameters(make_model())
    names = [n for n, _ in model.named_parameters()]
    assert "skips.inner.skip_weights" in names
    ctx = fake_ctx()
    plugin.golf_on_train_start(model, ctx, opts)
    plugin.golf_on_step_end(model, progress(2, 0.9), ctx, opts)
    assert not model.looping_active
    plugin.golf_on_step_end(model, progress(3, 0.0), ctx, opts)
    assert model.looping_active
    slots = []
    h = model.skips.inner.register_forward_hook(lambda m, a, out: slots.append(a[0]))
    pairs, _ = observed_pairs(model, torch.randint(0, 64, (2, 8)))
    h.remove()
    assert slots == [0, 1, 2, 3, 4, 4]
    assert pairs == [(4, 5), (5, 4), (6, 3), (7, 2), (8, 1), (9, 0), (10, None)]
    model = model.double()
    ids = torch.randint(0, 64, (2, 9))
    with torch.no_grad():
        ref = reference_logits(model, ids, repeat_virtual_layers(11, [4, 5]), slot_of=lambda j: min(j, 4), num_skips=6)
        torch.testing.assert_close(model.forward_logits(ids), ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", ["full", "down"])
def test_step_mode_untied_mlp(mode):
    opts = Opts(mode="step", recur_layers=[4, 5], start_step=3, untie_mlp=mode)
    model = wake(built(opts))
    d, hidden = 32, 64
    per_pass = (2 if mode == "full" else 1) * d * hidden
    assert count_parameters(model) == count_parameters(make_model()) + 2 * per_pass
    assert len(model.blocks) == 13
    assert [type(b) for b in model.blocks[11:]] == [UntiedPass, UntiedPass]
    sd = model.state_dict()
    extra = sorted(k for k in sd if k.startswith(("blocks.11.", "blocks.12.")))
    want = ["mlp.proj.weight"] + (["mlp.fc.weight"] if mode == "full" else [])
    assert extra == sorted(f"blocks.{i}.{w}" for i in (11, 12) for w in want)
    s = model.schedule
    assert list(s.looped_encoder) == [0, 1, 2, 3, 4, 5] and list(s.looped_decoder) == [11, 12, 6, 7, 8, 9, 10]
    # zero before activation, copies of the shared weights after
    with torch.no_grad():
        model.blocks[11].mlp.proj.weight.normal_()  # training noise before activation must be overwritten
    ctx = fake_ctx()
    plugin.golf_on_train_start(model, ctx, opts)
    plugin.golf_on_step_end(model, progress(3, 0.0), ctx, opts)
    assert model.looping_active
    for k, phys in ((11, 4), (12, 5)):
        torch.testing.assert_close(model.blocks[k].mlp.proj.weight, model.blocks[phys].mlp.proj.weight)
        if mode == "full":
            torch.testing.assert_close(model.blocks[k].mlp.fc.weight, model.blocks[phys].mlp.fc.weight)
    # primed: the looped forward equals the fully shared repeat (an independent loop)
    model = model.double()
    ids = torch.randint(0, 64, (2, 9))
    with torch.no_grad():
        ref = reference_logits(model, ids, repeat_virtual_layers(11, [4, 5]), slot_of=lambda j: min(j, 4), num_skips=6)
        torch.testing.assert_close(model.forward_logits(ids), ref, rtol=1e-10, atol=1e-10)
    # the untied weights are the ones the repeated pass uses: they get gradients, and changing
    # them changes the output
    y = torch.randint(0, 64, (2, 9))
    model.zero_grad()
    model(ids, y).backward()
    assert model.blocks[11].mlp.proj.weight.grad.abs().sum() > 0
    with torch.no_grad():
        model.blocks[12].mlp.proj.weight.mul_(2.0)
        assert not torch.allclose(model.forward_logits(ids), ref)
    # and state is not primed twice on resume
    assert plugin.golf_state_dict(ctx, opts)["primed"] is True


def test_untied_pass_follows_later_edits_of_its_block():
    """A block-editing plugin listed after depth-recurrence still reaches the repeated pass."""
    opts = Opts(mode="step", recur_layers=[4, 5], untie_mlp="full")
    model = wake(built(opts)).double()
    model.blocks[4].ln_scale = 0.25
    ctx = fake_ctx()
    plugin.golf_compile_warmup(model, ctx, opts)  # syncs the views
    seen = []
    model.blocks[4].attn.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    model.looping_active = True
    with torch.no_grad():
        model.forward_logits(torch.randint(0, 64, (1, 5)))
    assert len(seen) == 2
    for h in seen:
        torch.testing.assert_close(h.pow(2).mean(-1).sqrt(), torch.full(h.shape[:2], 0.25, dtype=h.dtype))


# ---- sizes, options, tiny -----------------------------------------------------------------------

def test_pr1394_parameter_count():
    """11x512, vocab 8192, MLP 4x, gated skips sized for the looped layout: 35,943,512 (pg_core §7.1)."""
    from golf_skip_gates import install_skip_gates

    with torch.device("meta"):
        model = GPT(GPTConfig(vocab_size=8192, num_layers=11, model_dim=512, num_heads=8, num_kv_heads=4, mlp_mult=4.0))
        install_skip_gates(model)
        plugin.golf_build_model(model, Opts())
    assert model.skips.num_skips == 7
    assert count_parameters(model) == 35_943_512


def test_bad_options():
    with pytest.raises(ValidationError):
        Opts(loop_start=6, loop_end=5)
    with pytest.raises(ValidationError):
        Opts(untie_mlp="full")  # the #1394 form is fully shared
    with pytest.raises(ValidationError):
        Opts(mode="step", recur_layers=[4, 4])
    with pytest.raises(GolfError, match="loop_end"):
        plugin.golf_build_model(make_model(layers=5), Opts())
    with pytest.raises(GolfError, match="recur_layers"):
        plugin.golf_build_model(make_model(layers=5), Opts(mode="step", recur_layers=[5]))


def test_tiny_scaling():
    r11 = load_recipe_text("[model]\nnum_layers = 11\n[train]\niterations = 40\n")
    o = plugin._tiny(Opts(), r11)
    assert (o.loop_start, o.loop_end, o.recur_layers, o.start_step) == (4, 5, [4, 5], 20)
    r5 = load_recipe_text("[model]\nnum_layers = 5\n[train]\niterations = 40\n")
    o = plugin._tiny(Opts(loop_start=3, loop_end=5, recur_layers=[4, 5, 6]), r5)
    assert (o.loop_start, o.loop_end, o.recur_layers) == (0, 2, [0, 1, 2])
    plugin.golf_build_model(make_model(layers=5), o)
    r4 = load_recipe_text("[model]\nnum_layers = 4\n")
    o = plugin._tiny(Opts(), r4)
    assert (o.loop_start, o.loop_end) == (1, 2)


@pytest.mark.slow
def test_untied_passes_compile_fullgraph():
    """torch.compile(fullgraph=True) traces the untied passes' views in both layouts (~20 s)."""
    opts = Opts(mode="step", recur_layers=[4, 5], untie_mlp="full")
    model = wake(built(opts))
    compiled = torch.compile(model, backend="eager", fullgraph=True, dynamic=False)
    x, y = torch.randint(0, 64, (2, 8)), torch.randint(0, 64, (2, 8))
    for active in (False, True):
        model.looping_active = active
        torch.testing.assert_close(compiled(x, y), model(x, y))


# ---- progressive form (#1412) -------------------------------------------------------------------

P = Opts(loop_start=4, loop_end=5, num_loops=2, enable_at=0.5, phase2_at=0.65)  # #1412 as run


def test_stage_lists_are_1412s():
    # R1412 L540-575 at 11 layers, loop 4-5, NUM_LOOPS=2
    (e1, d1), (e2, d2) = progressive_stages(11, 2, 4, 5)
    assert (e1, d1) == ([0, 1, 2, 3, 4, 5], [4, 5, 6, 7, 8, 9, 10])
    assert (e2, d2) == ([0, 1, 2, 3, 4, 5, 4], [5, 4, 5, 6, 7, 8, 9, 10])
    m = built(P)
    assert isinstance(m.schedule, ProgressiveSchedule) and m.skips.num_skips == 7


@pytest.mark.parametrize("stage", [1, 2])
def test_stage_forward_equals_independent_loop(stage):
    model = wake(built(P)).double()
    ids = torch.randint(0, 64, (2, 9))
    virtual = {1: [0, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 10], 2: [0, 1, 2, 3, 4, 5, 4, 5, 4, 5, 6, 7, 8, 9, 10]}[stage]
    model.schedule.stage = stage
    model.looping_active = True
    with torch.no_grad():
        got = model.forward_logits(ids)
        ref = reference_logits(model, ids, virtual)
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)


def test_two_stage_switch_one_per_step():
    model, ctx = built(P), fake_ctx()
    plugin.golf_on_train_start(model, ctx, P)
    plugin.golf_on_step_end(model, progress(5, 0.49), ctx, P)
    assert not model.looping_active
    plugin.golf_on_step_end(model, progress(6, 0.70), ctx, P)  # past both points: stage 1 first
    assert model.looping_active and model.schedule.stage == 1
    assert model.schedule.active() == ((0, 1, 2, 3, 4, 5), (4, 5, 6, 7, 8, 9, 10))
    plugin.golf_on_step_end(model, progress(7, 0.71), ctx, P)
    assert model.schedule.stage == 2 and len(model.schedule.active()[1]) == 8
    assert ctx.log.lines == ["layer_loop:enabled step:6 frac:0.700", "layer_loop:phase2 step:7 frac:0.710"]
    result = {}
    plugin.golf_summary(result, ctx, P)
    assert result["depth-recurrence"]["phase2_step"] == 7


def test_train_end_and_artifact_load_run_the_full_loop():
    model, ctx = built(P), fake_ctx()
    plugin.golf_on_train_start(model, ctx, P)
    plugin.golf_on_step_end(model, progress(6, 0.55), ctx, P)
    assert model.schedule.stage == 1
    plugin.golf_on_train_end(model, ctx, P)
    assert model.looping_active and model.schedule.stage == 2
    fresh = built(P)
    plugin.golf_on_artifact_load(fresh, fake_ctx(), P)
    assert fresh.looping_active and fresh.schedule.stage == 2


def test_warmup_enters_each_stage_and_restores():
    model, ctx = built(P), fake_ctx()
    calls = plugin.golf_compile_warmup(model, ctx, P)
    assert len(calls) == 2
    seen = []
    for enter in calls:
        undo = enter(model)
        seen.append(model.schedule.active())
        undo()
        assert not model.looping_active and model.schedule.stage == 2
    assert [len(e) + len(d) for e, d in seen] == [13, 15]


def test_resume_keeps_the_stage():
    model, ctx = built(P), fake_ctx()
    plugin.golf_on_train_start(model, ctx, P)
    plugin.golf_on_step_end(model, progress(6, 0.55), ctx, P)
    state = plugin.golf_state_dict(ctx, P)
    assert state["stage"] == 1 and state["looping_active"]
    resumed, ctx2 = built(P), fake_ctx()
    plugin.golf_on_train_start(resumed, ctx2, P)
    plugin.golf_load_state_dict(state, ctx2, P)
    assert resumed.looping_active and resumed.schedule.stage == 1


def test_pr1412_count_equals_1394s_and_bad_options():
    # #1412's log and #1394's both print 35,943,512: the skip slots are sized for stage 2
    m, m2 = make_model(), make_model()
    for model, opts in ((m, P), (m2, Opts())):
        plugin.golf_build_model(model, opts)
    assert count_parameters(m) == count_parameters(m2)
    with pytest.raises(ValidationError, match="phase2_at"):
        Opts(enable_at=0.5, phase2_at=0.4)
    with pytest.raises(ValidationError, match="phase2_at"):
        Opts(mode="step", phase2_at=0.6)
