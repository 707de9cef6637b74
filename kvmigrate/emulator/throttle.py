"""Key Vault's per-vault throttling: transactions per 10-second window, with a smaller budget for creates.

Requests answered 429 do not count toward the limits (facts §11). Secret creates and key/certificate imports draw
on their own budget (300 per 10 s by default) and not on the general one (4,000 per 10 s); the documented weighting
is simplified to these two independent sliding windows.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

WINDOW = 10.0


@dataclass
class SlidingWindow:
    """Count accepted transactions over the last ``WINDOW`` seconds; 0 means unlimited."""

    limit: Callable[[], int]
    clock: Callable[[], float] = time.monotonic
    stamps: deque[float] = field(default_factory=deque)

    def try_take(self) -> bool:
        limit = self.limit()
        if not limit:
            return True
        now = self.clock()
        while self.stamps and self.stamps[0] <= now - WINDOW:
            self.stamps.popleft()
        if len(self.stamps) >= limit:
            return False
        self.stamps.append(now)
        return True

    def seconds_until_free(self) -> float:
        if not self.stamps:
            return 0.0
        return max(0.0, self.stamps[0] + WINDOW - self.clock())


@dataclass
class Throttle:
    general: SlidingWindow
    creates: SlidingWindow

    def reset(self) -> None:
        """Forget the admitted transactions, as if the vault had been idle for a window (benchmarks start fresh)."""
        self.general.stamps.clear()
        self.creates.stamps.clear()

    def admit(self, *, is_create: bool) -> float | None:
        """Take one transaction; return None when admitted, else the seconds until the window frees."""
        window = self.creates if is_create else self.general
        if window.try_take():
            return None
        return window.seconds_until_free()
