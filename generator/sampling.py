"""Drawing from the measured tables (:mod:`generator.params`), with a caller's RNG.

Every draw takes the ``random`` method of a seeded :class:`random.Random` (never the
module's global one) and costs one or two calls of it and a bisect: the generator makes
hundreds of thousands of lines a second in pure Python. Nothing here keeps state between
draws.
"""
from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import Any

from generator.params import GENERATOR_VERSION, TAIL_PROBS

Uniform = Callable[[], float]  # random.Random.random: a float in [0, 1)

_MASK64 = (1 << 64) - 1


def sub_seed(seed: int, name: str) -> int:
    """An independent 64-bit seed for one part of the generator (the catalogue, the
    customers, the invoices), so that each part's draws do not depend on the others'."""
    digest = hashlib.sha256(f"shopstream.generator/{GENERATOR_VERSION}/{seed}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def mix64(value: int) -> int:
    """SplitMix64's finaliser: a fixed, well-spread function of a 64-bit integer. Lets an
    attribute of the ``n``-th customer be computed on demand instead of stored."""
    z = (value + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def unit(value: int) -> float:
    """A 64-bit integer as a float in [0, 1)."""
    return (value >> 11) * (1.0 / (1 << 53))


class Choice:
    """Values drawn in proportion to their weights."""

    __slots__ = ("values", "_cum", "_total", "_last")

    def __init__(self, pairs: Sequence[Sequence[Any]]):
        if not pairs:
            raise ValueError("a choice needs at least one value")
        self.values = [p[0] for p in pairs]
        self._cum = list(accumulate(float(p[1]) for p in pairs))
        self._total = self._cum[-1]
        self._last = len(self.values) - 1

    def at(self, u: float) -> Any:
        """The value at ``u`` in [0, 1) of the cumulative weights."""
        i = bisect_right(self._cum, u * self._total)
        return self.values[i if i < self._last else self._last]

    def draw(self, random: Uniform) -> Any:
        return self.at(random())



class Quantiles:
    """A distribution given by its quantiles: the inverse CDF, interpolated between them
    (linearly, or geometrically for positive tails that span orders of magnitude)."""

    __slots__ = ("probs", "values", "geometric")

    def __init__(self, probs: Sequence[float], values: Sequence[float], *, geometric: bool = False):
        if len(probs) != len(values) or len(probs) < 2:
            raise ValueError("quantiles need as many values as probabilities, at least two")
        self.probs, self.values, self.geometric = tuple(probs), tuple(float(v) for v in values), geometric

    def at(self, u: float) -> float:
        probs, values = self.probs, self.values
        i = bisect_right(probs, u) - 1
        if i < 0:
            return values[0]
        if i >= len(probs) - 1:
            return values[-1]
        low, high = values[i], values[i + 1]
        t = (u - probs[i]) / (probs[i + 1] - probs[i])
        if self.geometric and low > 0 and high > low:
            return low * (high / low) ** t
        return low + (high - low) * t

    def rounded(self, u: float) -> int:
        return int(self.at(u) + 0.5)

    def mean_rounded(self, points: int = 200_000) -> float:
        """The mean of :meth:`rounded` over [0, 1) (what the draws average to)."""
        return sum(self.rounded((k + 0.5) / points) for k in range(points)) / points


class TopAndTail:
    """The most common values with their counts, and the rest by its quantiles (the form
    ``{"top": [[value, count], …], "rest": count, "rest_quantiles": […]}`` of the measured
    tables). Values are numbers; ``scale`` turns them into integers (100: prices in cents)."""

    __slots__ = ("_top", "_tail", "_top_share", "_scale")

    def __init__(self, table: dict, *, scale: int = 1):
        from decimal import Decimal

        self._scale = scale
        top = [(int(Decimal(str(v)) * scale), n) for v, n in table["top"]]
        self._top = Choice(top)
        total = sum(n for _, n in top) + table["rest"]
        self._top_share = sum(n for _, n in top) / total
        rest = [float(Decimal(str(v)) * scale) for v in table["rest_quantiles"]]
        self._tail = Quantiles(TAIL_PROBS, rest, geometric=True) if table["rest"] and rest else None

    def draw(self, random: Uniform) -> int:
        u = random()
        if self._tail is None or u < self._top_share:
            return self._top.at(random())
        return self._tail.rounded(random())


class Tiers:
    """A popularity curve over ``n`` ranks from its Lorenz points: the top ranks at
    ``fractions`` hold ``shares`` of the draws. Drawing picks a tier by its share, then a
    rank uniformly in it: memory is the number of tiers, whatever ``n``."""

    __slots__ = ("_bounds", "_cum", "n")

    def __init__(self, fractions: Sequence[float], shares: Sequence[float], n: int):
        if n < 1:
            raise ValueError("a popularity curve needs at least one rank")
        self.n = n
        bounds, cum = [0], []
        for fraction, share in zip(fractions, shares):
            upto = min(n, max(1, round(fraction * n)))
            if upto > bounds[-1]:
                bounds.append(upto)
                cum.append(share)
            elif cum:  # a tier with no rank of its own at this size: its share goes to the tier before
                cum[-1] = share
        if bounds[-1] < n:
            bounds.append(n)
            cum.append(1.0)
        cum[-1] = max(cum[-1], 1.0)
        self._bounds, self._cum = bounds, cum

    def draw(self, random: Uniform) -> int:
        tier = bisect_right(self._cum, random() * self._cum[-1])
        tier = min(tier, len(self._cum) - 1)
        low, high = self._bounds[tier], self._bounds[tier + 1]
        return low + int(random() * (high - low))

    def weight(self, rank: int) -> float:
        """The share of draws that fall on ``rank``."""
        tier = bisect_right(self._bounds, rank) - 1
        before = self._cum[tier - 1] if tier else 0.0
        return (self._cum[tier] - before) / (self._bounds[tier + 1] - self._bounds[tier])
