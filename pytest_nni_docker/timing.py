"""Step timings of a run, kept on its ``RunRecord`` for benchmarks and debug logs."""

from __future__ import annotations

import time


class StepClock:
    """Adds the seconds since the previous lap to a named step in ``timings``.

    A step timed twice adds up, so a retried step shows its whole cost.
    """

    def __init__(self, timings: dict[str, float]):
        self.timings = timings
        self._last = time.perf_counter()

    def restart(self) -> None:
        """Start the next lap now, so that the time since the last lap counts nowhere."""
        self._last = time.perf_counter()

    def lap(self, step: str) -> float:
        """Add the seconds since the previous lap to ``step`` and return them."""
        now = time.perf_counter()
        seconds = now - self._last
        self._last = now
        self.timings[step] = self.timings.get(step, 0.0) + seconds
        return seconds


def format_timings(timings: dict[str, float]) -> str:
    """Return ``timings`` as one line, such as ``container_start=0.31s manager_start=2.40s``."""
    return " ".join(f"{step}={seconds:.2f}s" for step, seconds in timings.items())
