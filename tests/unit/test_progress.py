"""The live progress display: rate and ETA over a sliding window of finished objects, the 429 counter live."""

from __future__ import annotations

import io

from rich.console import Console

from kvmigrate.models import Listed, ObjectRef, ObjectType, Outcome
from kvmigrate.progress import ProgressDisplay


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def render(display: ProgressDisplay) -> str:
    console = Console(record=True, width=140, force_terminal=False)
    console.print(display._progress.make_tasks_table(display._progress.tasks))
    return console.export_text()


def test_rate_and_eta_come_from_finished_objects_in_the_last_ten_seconds() -> None:
    clock = Clock()
    throttled = [0]
    display = ProgressDisplay(Console(file=io.StringIO()), lambda: throttled[0], clock=clock)
    for index in range(1000):
        display.on_listed(Listed(ObjectRef(ObjectType.SECRET, f"s{index}")))  # listing runs far ahead
    for second in range(20):
        clock.now += 1.0
        for index in range(35):  # 35 objects a second finish
            display.on_finished(ObjectRef(ObjectType.SECRET, f"s{second}-{index}"), Outcome.COPIED, None)
    text = render(display)
    assert "35.0/s" in text  # not the listing's pace, not the run's average
    remaining = 1000 - 700
    assert f"ETA 0:00:{round(remaining / 35):02d}" in text
    throttled[0] = 17  # the vault throttles while nothing finishes: the counter still moves
    clock.now += 3.0
    assert "429s: 17" in render(display)
