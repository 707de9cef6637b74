"""Live terminal progress as a subscriber of engine events: done/total, rate, 429s and ETA per object type."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from kvmigrate.models import ObjectRef


class ProgressDisplay:
    """One bar per object type; totals grow while the listing streams in."""

    def __init__(self, console: Console, throttled: Callable[[], int]) -> None:
        self._throttled = throttled
        self._progress = Progress(
            TextColumn("[bold]{task.description:<13}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("429s: {task.fields[throttled]}"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            refresh_per_second=5,
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
            self._tasks[name] = self._progress.add_task(name, total=0, rate="", throttled=0)
        return self._tasks[name]

    def on_listed(self, ref: ObjectRef) -> None:
        task = self._task(ref)
        total = self._progress.tasks[self._tasks[ref.type.plural]].total or 0
        self._progress.update(task, total=total + 1)

    def on_finished(self, ref: ObjectRef, outcome: str) -> None:
        task = self._task(ref)
        self._progress.advance(task)
        speed = self._progress.tasks[self._tasks[ref.type.plural]].speed
        self._progress.update(task, rate=f"{speed:6.1f}/s" if speed else "", throttled=self._throttled())
