"""Counters each vault serves at ``GET /_emulator/stats`` for tests and benchmarks."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stats:
    requests: int = 0
    throttled: int = 0
    unauthorized: int = 0
    faults: int = 0
    operations: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    objects: Counter[str] = field(default_factory=Counter)  # "secrets.backup/name": who was moved, how often
    started: Counter[str] = field(default_factory=Counter)  # operations received, answered or not

    def record(self, operation: str, status: int) -> None:
        self.requests += 1
        self.operations[operation] += 1
        self.statuses[str(status)] += 1
        if status == 429:
            self.throttled += 1
        elif status == 401:
            self.unauthorized += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "throttled": self.throttled,
            "unauthorized": self.unauthorized,
            "faults": self.faults,
            "operations": dict(self.operations),
            "statuses": dict(self.statuses),
            "objects": dict(self.objects),
            "started": dict(self.started),
        }

    def reset(self) -> None:
        self.requests = self.throttled = self.unauthorized = self.faults = 0
        self.operations.clear()
        self.statuses.clear()
        self.objects.clear()
        self.started.clear()
