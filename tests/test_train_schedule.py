"""LR multiplier, momentum warmup and the training clock against hand-computed values."""
from __future__ import annotations

import pytest

from golf_core.config import TrainSection
from golf_core.errors import RecipeError
from golf_core.train.clock import TrainClock
from golf_core.train.schedule import LRSchedule, MomentumWarmup, budget_seconds, lr_mul


def test_baseline_step_based_warmdown():
    t = TrainSection(iterations=100, warmdown_iters=20, max_wallclock_seconds=0)
    # 1.0 until step 80, then (100 - step) / 20
    assert lr_mul(0, 0.0, t) == 1.0
    assert lr_mul(79, 0.0, t) == 1.0
    assert lr_mul(80, 0.0, t) == 1.0
    assert lr_mul(90, 0.0, t) == pytest.approx(0.5)
    assert lr_mul(99, 0.0, t) == pytest.approx(0.05)
    assert lr_mul(100, 0.0, t) == 1.0                       # outside [start, iterations)


def test_baseline_step_based_warmdown_longer_than_run():
    t = TrainSection(iterations=10, warmdown_iters=20, max_wallclock_seconds=0)
    assert lr_mul(0, 0.0, t) == pytest.approx(0.5)          # (10 - 0) / 20


def test_baseline_wallclock_warmdown():
    t = TrainSection(max_wallclock_seconds=600, warmdown_iters=1200)
    # step 10000 at 500 s: 50 ms/step -> warmdown 60 s; 100 s remain -> 1.0
    assert lr_mul(10000, 500.0, t) == 1.0
    # step 11000 at 550 s: 50 ms/step -> warmdown 60 s; 50 s remain -> 50/60
    assert lr_mul(11000, 550.0, t) == pytest.approx(50 / 60)
    # past the cap: 0
    assert lr_mul(12000, 601.0, t) == 0.0
    # step 0: no time yet -> 1.0
    assert lr_mul(0, 0.0, t) == 1.0


def test_wallclock_warmdown_uses_the_reserve():
    t = TrainSection(max_wallclock_seconds=600, reserve_seconds=12, warmdown_iters=100)
    # cap 588 s; step 1000 at 583 s: step 0.583 s -> warmdown 58.3 s; 5 s remain
    assert lr_mul(1000, 583.0, t) == pytest.approx(5 / 58.3)


def test_pr1394_warmdown_frac_wallclock():
    t = TrainSection(max_wallclock_seconds=600, reserve_seconds=12, warmdown_frac=0.667, min_lr=0.0)
    assert lr_mul(0, 100.0, t) == 1.0                        # frac 0.170 < 0.333
    assert lr_mul(0, 294.0, t) == pytest.approx(0.5 / 0.667)  # frac 0.5
    assert lr_mul(0, 588.0, t) == 0.0
    t2 = TrainSection(max_wallclock_seconds=600, reserve_seconds=12, warmdown_frac=0.667, min_lr=0.1)
    assert lr_mul(0, 580.0, t2) == pytest.approx(0.1)        # (8/588)/0.667 = 0.0204 -> floor 0.1


def test_pr1394_warmdown_frac_step_based():
    t = TrainSection(iterations=1000, max_wallclock_seconds=0, warmdown_frac=0.5)
    assert lr_mul(499, 0.0, t) == 1.0
    assert lr_mul(500, 0.0, t) == pytest.approx(1.0)
    assert lr_mul(750, 0.0, t) == pytest.approx(0.5)
    assert lr_mul(900, 0.0, t) == pytest.approx(0.2)


def test_no_warmdown():
    assert lr_mul(19999, 0.0, TrainSection(warmdown_iters=0, max_wallclock_seconds=0)) == 1.0


def test_frac():
    s = LRSchedule.from_section(TrainSection(iterations=200, max_wallclock_seconds=0))
    assert s.frac(50, 123.0) == 0.25
    s = LRSchedule.from_section(TrainSection(max_wallclock_seconds=600, reserve_seconds=12))
    assert s.cap_s == 588 and s.frac(5, 294.0) == 0.5


def test_budget():
    assert budget_seconds(TrainSection(max_wallclock_seconds=0)) is None
    assert budget_seconds(TrainSection(max_wallclock_seconds=600, reserve_seconds=12)) == 588
    with pytest.raises(RecipeError, match="reserve_seconds"):
        budget_seconds(TrainSection(max_wallclock_seconds=10, reserve_seconds=10))


def test_momentum_warmup_baseline_and_1394():
    m = MomentumWarmup.from_section(TrainSection())
    assert m(0) == pytest.approx(0.85)
    assert m(250) == pytest.approx(0.90)
    assert m(500) == pytest.approx(0.95) and m(10000) == pytest.approx(0.95)
    m = MomentumWarmup(0.92, 0.99, 1500)
    assert m(750) == pytest.approx(0.955)
    assert MomentumWarmup(0.85, 0.95, 0)(0) == 0.95


class FakeTime:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_clock_times_only_training_segments():
    ft = FakeTime()
    syncs = []
    c = TrainClock(cap_s=10.0, time_fn=ft, sync=lambda: syncs.append(ft.now))
    assert c.elapsed_s == 0.0 and not c.running
    ft.now += 5                     # before start: untimed (compile warmup)
    c.start()
    ft.now += 3
    assert c.elapsed_s == 3.0 and not c.reached_cap()
    with c.paused():                # validation
        ft.now += 100
        assert not c.running and c.elapsed_s == 3.0
    assert c.running
    ft.now += 7
    assert c.elapsed_s == 10.0 and c.reached_cap() and c.frac() == 1.0
    assert c.pause() == 10.0
    assert len(syncs) == 4          # start, pause, resume, pause


def test_clock_state_roundtrip_and_no_cap():
    ft = FakeTime()
    c = TrainClock(None, time_fn=ft)
    c.start()
    ft.now += 2.5
    st = c.state_dict()
    c2 = TrainClock(None, time_fn=ft)
    c2.load_state_dict(st)
    assert c2.elapsed_s == 2.5 and not c2.running and not c2.reached_cap() and c2.frac() is None
    c2.start()
    ft.now += 1
    assert c2.elapsed_s == 3.5


def test_pr1787_min_lr_floor_on_a_dense_clock():
    """#1787 as run (warmdown 0.75, MIN_LR 0.10, 600 s cap less a 0.5 s GPTQ reserve) against the
    formula written out: 1 before 1 - 0.75 of the budget, then max((1 - frac) / 0.75, 0.10)."""
    t = TrainSection(max_wallclock_seconds=600, reserve_seconds=0.5, warmdown_frac=0.75, min_lr=0.10)
    s = LRSchedule.from_section(t)
    for i in range(2101):
        elapsed = 1.05 * 599.5 * i / 2100
        frac = elapsed / 599.5
        want = 1.0 if frac < 0.25 else max((1.0 - frac) / 0.75, 0.10)
        assert s(0, elapsed) == pytest.approx(want, abs=1e-15)
    assert s(0, 599.5 * 0.925) == pytest.approx(0.10)   # (1 - 0.925) / 0.75 = 0.1: the floor starts here
    assert s(0, 599.5 * 0.95) == 0.10 and s(0, 700.0) == 0.10


def test_min_lr_outside_0_1_is_refused():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="min_lr"):
        TrainSection(min_lr=1.5)
