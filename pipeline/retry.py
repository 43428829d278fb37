"""The one backoff schedule of the AWS adapters: jittered exponential.

Attempt ``n`` (1-based) waits a random time between half and all of
``min(cap, base * 2**(n-1))``, so clients that failed together do not retry together.
"""
from __future__ import annotations

import random
from collections.abc import Callable


def backoff_delay(attempt: int, base: float, cap: float, *, uniform: Callable[[float, float], float] = random.uniform) -> float:
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return uniform(ceiling / 2, ceiling)
