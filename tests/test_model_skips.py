"""U-Net skip pairing (LIFO) observed through forward hooks (pg_core §4.2, §5.3)."""
import torch

from golf_core.model import GPT, GPTConfig, LayerSchedule


def tiny(num_layers):
    return GPT(GPTConfig(vocab_size=32, num_layers=num_layers, model_dim=16, num_heads=2, num_kv_heads=1))


def trace(model):
    """Run one forward; return the ordered events ('block', idx, output) and ('skip', slot, skip tensor)."""
    events = []
    handles = [b.register_forward_hook(lambda m, args, out, i=i: events.append(("block", i, out)))
               for i, b in enumerate(model.blocks)]
    handles.append(model.skips.register_forward_hook(
        lambda m, args, out: events.append(("skip", args[0], args[2]))))
    model.forward_logits(torch.randint(0, 32, (1, 6)))
    for h in handles:
        h.remove()
    return events


def pairing(events):
    """[(decoder block, slot, encoder block whose output was merged)] and the block call order."""
    outs = []  # (block idx, output) in call order
    pairs, pending = [], None
    for kind, a, t in events:
        if kind == "skip":
            src = [i for i, o in outs if o is t]
            assert len(src) == 1
            pending = (a, src[0])
        else:
            if pending is not None:
                pairs.append((a, pending[0], pending[1]))
                pending = None
            outs.append((a, t))
    return pairs, [i for i, _ in outs]


def test_baseline_nine_layers():
    model = tiny(9)
    assert model.skips.num_skips == 4
    pairs, order = pairing(trace(model))
    assert order == list(range(9))
    # decoder blocks 4..7 get encoder outputs 3..0 through slots 0..3; block 8 gets none
    assert pairs == [(4, 0, 3), (5, 1, 2), (6, 2, 1), (7, 3, 0)]


def test_pr1394_looped_schedule_pairing():
    model = tiny(11)
    virt = [0, 1, 2, 3] + [4, 5] * 3 + [6, 7, 8, 9, 10]
    model.set_schedule(LayerSchedule(range(5), range(5, 11), virt[:7], virt[7:]))
    assert model.skips.num_skips == 7

    pairs, order = pairing(trace(model))          # looping off: 0..4 | 5..10
    assert order == list(range(11))
    assert pairs == [(5, 0, 4), (6, 1, 3), (7, 2, 2), (8, 3, 1), (9, 4, 0)]

    model.looping_active = True                   # looping on: 15 block applications
    pairs, order = pairing(trace(model))
    assert order == virt and len(order) == 15
    assert [p[0] for p in pairs] == [5, 4, 5, 6, 7, 8, 9]
    assert [p[1] for p in pairs] == list(range(7))
    assert [p[2] for p in pairs] == [4, 5, 4, 3, 2, 1, 0]


def test_odd_and_single_layer_models():
    pairs, order = pairing(trace(tiny(1)))
    assert order == [0] and pairs == []
    pairs, _ = pairing(trace(tiny(4)))
    assert pairs == [(2, 0, 1), (3, 1, 0)]
