"""Reconnect policy shared by provider shells: exponential backoff with jitter.

Hold one :class:`Backoff` per connection; call :meth:`Backoff.next_delay`
after each failed attempt and :meth:`Backoff.reset` after a success. It does
no sleeping itself (the shell sleeps on the session clock, so tests on a
virtual clock do not wait).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass(slots=True)
class Backoff:
    """Delays ``initial_s * factor**n``, capped at ``max_s``, with +-``jitter`` spread.

    ``attempts`` limits retries (``None``: forever); :meth:`next_delay` returns
    ``None`` once they are used up.
    """

    initial_s: float = 0.2
    max_s: float = 10.0
    factor: float = 2.0
    jitter: float = 0.2
    attempts: int | None = 5
    seed: int | None = None
    failures: int = field(default=0, init=False)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.initial_s <= 0 or self.max_s < self.initial_s or self.factor < 1:
            raise ValueError("Backoff needs 0 < initial_s <= max_s and factor >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("Backoff jitter must be in [0, 1)")
        self._rng = random.Random(self.seed)

    def next_delay(self) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` to give up."""
        if self.attempts is not None and self.failures >= self.attempts:
            return None
        base = min(self.max_s, self.initial_s * self.factor**self.failures)
        self.failures += 1
        spread = base * self.jitter
        return max(0.0, base + self._rng.uniform(-spread, spread))

    def reset(self) -> None:
        """A connection succeeded: start again from ``initial_s``."""
        self.failures = 0
