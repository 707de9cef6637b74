"""Live terminal progress as a subscriber of engine (and verify) events: done/total, rate, 429s and ETA per type.

Rate and ETA are computed over a sliding window of *finished* objects (the last ``WINDOW`` seconds), not over
listing, which runs far ahead; the 429 counter is read on every refresh, so it moves while the vault throttles even
when no object finishes.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TaskID, TextColumn
from rich.text import Text

from kvmigrate.models import Listed, ObjectRef, Outcome

WINDOW = 10.0


@dataclass
class _Rate:
    """Finished objects in the last ``WINDOW`` seconds, for one type."""

    clock: Callable[[], float]
    finished: deque[float] = field(default_factory=deque)
    started: float | None = None

    def add(self) -> None:
        now = self.clock()
        if self.started is None:
            self.started = now
        self.finished.append(now)
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self.finished and self.finished[0] <= now - WINDOW:
            self.finished.popleft()

    def per_second(self) -> float | None:
        now = self.clock()
        self._trim(now)
        if self.started is None or not self.finished:
            return None
        span = min(WINDOW, max(now - self.started, 0.5))
        return len(self.finished) / span


class _RateColumn(ProgressColumn):
    def __init__(self, rates: dict[TaskID, _Rate]) -> None:
        super().__init__()
        self._rates = rates

    def render(self, task: Task) -> Text:
        rate = self._rates[task.id].per_second()
        return Text(f"{rate:7.1f}/s" if rate else " " * 9)


class _EtaColumn(ProgressColumn):
    def __init__(self, rates: dict[TaskID, _Rate]) -> None:
        super().__init__()
        self._rates = rates

    def render(self, task: Task) -> Text:
        rate = self._rates[task.id].per_second()
        remaining = (task.total or 0) - task.completed
        if not rate or remaining <= 0:
            return Text("ETA -:--:--" if remaining > 0 else "")
        seconds = int(remaining / rate + 0.5)
        return Text(f"ETA {seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}")


class _ThrottledColumn(ProgressColumn):
    def __init__(self, throttled: Callable[[], int]) -> None:
        super().__init__()
        self._throttled = throttled

    def render(self, task: Task) -> Text:
        return Text(f"429s: {self._throttled()}")


class ProgressDisplay:
    """One bar per object type; totals grow while the listing streams in."""

    def __init__(
        self, console: Console, throttled: Callable[[], int], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._rates: dict[TaskID, _Rate] = {}
        self._progress = Progress(
            TextColumn("[bold]{task.description:<13}"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(self._rates),
            _ThrottledColumn(throttled),
            _EtaColumn(self._rates),
            console=console,
            transient=False,
            refresh_per_second=4,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> ProgressDisplay:
        self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def _task(self, ref: ObjectRef) -> TaskID:
        name = ref.type.plural
        if name not in self._tasks:
            task = self._progress.add_task(name, total=0)
            self._tasks[name] = task
            self._rates[task] = _Rate(self._clock)
        return self._tasks[name]

    def on_listed(self, listed: Listed) -> None:
        task = self._task(listed.ref)
        self._progress.update(task, total=(self._progress.tasks[task].total or 0) + 1)

    def on_decided(self, listed: Listed, decision: object, assessment: object) -> None:
        return None

    def on_finished(self, ref: ObjectRef, outcome: Outcome, detail: str | None) -> None:
        task = self._task(ref)
        self._progress.advance(task)
        self._rates[task].add()
