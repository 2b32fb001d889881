import pytest

from sentiment_lstm.training.schedule import CheckpointCadence, lr_factor


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_checkpoint_cadence_counts_steps_and_minutes_since_the_last_save():
    clock = FakeClock()
    cadence = CheckpointCadence(steps=0, minutes=10, clock=clock)
    clock.now += 599
    assert not cadence.time_due() and not cadence.due(7, cadence.time_due())
    clock.now += 1
    assert cadence.time_due() and cadence.due(7, cadence.time_due())
    cadence.saved()  # the clock starts again at each save, the epoch's end's too
    assert not cadence.time_due()

    every_5 = CheckpointCadence(steps=5, minutes=0, clock=clock)
    clock.now += 1e6
    assert not every_5.time_due()  # minutes=0: off
    assert [s for s in range(1, 16) if every_5.due(s, False)] == [5, 10, 15]


def test_lr_warms_up_then_decays_to_min_ratio():
    assert lr_factor(0, 10, 100, 0.1) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100, 0.1) == pytest.approx(1.0)
    assert lr_factor(100, 10, 100, 0.1) == pytest.approx(0.1)
