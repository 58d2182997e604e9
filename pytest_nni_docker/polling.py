"""The one polling helper: wait on a condition with a deadline and an interval."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(condition: Callable[[], T | None], timeout: float, interval: float = 0.2,
             description: str = "condition", retry: tuple[type[Exception], ...] = (Exception,)) -> T:
    """Call ``condition`` until it returns a value other than None or False; return that value.

    Exceptions of the ``retry`` types count as "not yet"; any other exception
    propagates at once. Raises ``TimeoutError`` naming ``description`` after
    ``timeout`` seconds, with the last retried exception, if any, chained to it.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
            if value is not None and value is not False:
                return value
            last_error = None
        except retry as error:
            last_error = error
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            message = f"Timed out after {timeout:.0f} s waiting for {description}"
            if last_error is not None:
                raise TimeoutError(f"{message}: {last_error}") from last_error
            raise TimeoutError(message)
        time.sleep(min(interval, remaining))
