from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sentiment_lstm.reports.tracking import Tracker


def steps_and_values(log_dir, tag: str = "train/loss") -> list[tuple[int, float]]:
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_a_resumed_trackers_purge_step_hides_the_killed_runs_later_events(tmp_path):
    first = Tracker(tmp_path)
    for step in range(5, 45, 5):  # a run checkpointed at step 20, then logged on to 40
        first.scalars({"train/loss": float(step)}, step)
    first.close()
    assert [s for s, _ in steps_and_values(tmp_path)] == list(range(5, 45, 5))
    resumed = Tracker(tmp_path, purge_step=21)  # resumed from the checkpoint at step 20
    for step in range(25, 45, 5):
        resumed.scalars({"train/loss": -float(step)}, step)
    resumed.close()
    # Both files are on disk; reading the folder, TensorBoard keeps the resumed run's values
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2
    assert steps_and_values(tmp_path) == [(5, 5.0), (10, 10.0), (15, 15.0), (20, 20.0),
                                          (25, -25.0), (30, -30.0), (35, -35.0), (40, -40.0)]


def test_flush_puts_the_queued_events_on_disk(tmp_path):
    tracker = Tracker(tmp_path)
    tracker.scalars({"train/loss": 0.5}, 1)
    tracker.flush()  # not closed: as a process killed right after a checkpoint leaves it
    assert steps_and_values(tmp_path) == [(1, 0.5)]
    tracker.close()
