"""The shop: its calendar, its customers, and the invoices of each day, as a stream.

:class:`Shop` turns :class:`Options` into invoices in time order, one at a time. What it
keeps between invoices is bounded whatever ``days`` and ``scale`` are: the catalogue
(3,914 products), a few tables, and the last :data:`RECENT_ORDERS` customers' orders
(what cancellations refer to). Customers are never stored: the ``n``-th customer's number
and country are computed from ``n``.

Reproducible: every draw comes from ``random.Random`` instances seeded from
``Options.seed`` (:func:`generator.sampling.sub_seed`); nothing reads the clock, the
global RNG or ``hash()``. The first ``d`` days of a run of ``D > d`` days are the run of
``d`` days (nothing looks ahead).
"""
from __future__ import annotations

import math
import random as _random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import NamedTuple

from generator.catalogue import Catalogue, Item, Price, Product, price
from generator.params import BULK_QUANTITY, KINDS, LINE_PROBS, LORENZ_RANKS, MEASURED, PRICE_BANDS, group_of
from generator.sampling import Choice, Quantiles, Tiers, TopAndTail, mix64, sub_seed, unit
from pipeline.events import InvoiceEvent, build_event

DEFAULT_START = date(2010, 12, 1)
RECENT_ORDERS = 2_000  # customers' orders a cancellation may refer to (about three weeks of the real shop)
KEPT_LINES = 32  # lines of each recent order kept for that
NO_CUSTOMER_COUNTRY = "United Kingdom"  # stock notes and adjustments are the shop's own
ADJUST_NEGATIVE = 2 / 3  # two of the real data's three "Adjust bad debt" invoices take money off


@dataclass(frozen=True, slots=True)
class Options:
    """What a run generates: ``days`` calendar days from ``start`` (closed days have no
    invoices), at ``scale`` times the real shop's daily volume."""

    seed: int = 1
    days: int = 7
    start: date = DEFAULT_START
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.days < 0:
            raise ValueError("days must not be negative")
        if not (self.scale > 0 and math.isfinite(self.scale)):
            raise ValueError("scale must be a positive number")


class Line(NamedTuple):
    item: Item
    quantity: int
    price: Price
    late: int = 0  # minutes after the invoice's own (43 real invoices straddle a minute)


class Invoice(NamedTuple):
    number: str  # "536365", "C536366", "A536367"
    kind: str  # one of generator.params.KINDS
    day: date
    minute: int  # of the day, shop time
    customer: int | None
    country: str
    lines: list[Line]

    @property
    def cents(self) -> int:
        return sum(line.quantity * line.price.cents for line in self.lines)

    def stamp(self, late: int = 0) -> tuple[int, int]:
        """(hour, minute) of the invoice, or of a line ``late`` minutes after it."""
        return divmod(self.minute + late, 60)

    def to_event(self) -> InvoiceEvent:
        """The invoice event, as :func:`pipeline.kaggle.read_invoices` reads it back from
        the generated files."""
        day = self.day.isoformat()

        def iso(late: int) -> str:
            hour, minute = self.stamp(late)
            return f"{day}T{hour:02d}:{minute:02d}:00"

        first = iso(0)
        return build_event(
            self.number, None if self.customer is None else str(self.customer), self.country,
            [(line.item.code, line.item.description or None, line.quantity, line.price.value,
              first if not line.late else iso(line.late)) for line in self.lines],
        )


# ---- the calendar -------------------------------------------------------------------------


def easter(year: int) -> date:
    """Easter Sunday (the Gregorian computus, Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _monday(year: int, month: int, *, last: bool) -> date:
    if last:
        day = date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)
        return day - timedelta(days=day.weekday())
    day = date(year, month, 1)
    return day + timedelta(days=(7 - day.weekday()) % 7)


ONE_OFF_CLOSED = frozenset({date(2011, 4, 29)})  # the royal wedding's bank holiday, closed in the real data


def is_open(day: date) -> bool:
    """The real shop's calendar: closed on Saturdays, from Christmas Eve to 3 January,
    Good Friday to Easter Monday, and on the May and August bank holiday Mondays. (The
    contract test checks it closes exactly the real data's closed days.)"""
    if day.weekday() == 5 or day in ONE_OFF_CLOSED:
        return False
    if (day.month == 12 and day.day >= 24) or (day.month == 1 and day.day <= 3):
        return False
    sunday = easter(day.year)
    if sunday - timedelta(days=2) <= day <= sunday + timedelta(days=1):
        return False
    return day not in (_monday(day.year, 5, last=False), _monday(day.year, 5, last=True),
                       _monday(day.year, 8, last=True))


# ---- customers ----------------------------------------------------------------------------


class Customers:
    """``count`` customers (the real 4,339 times the scale), computed, not stored.

    The ``n``-th customer's number is ``12346 + n × 1.37`` (the real numbers' range and
    density; five digits up to a scale of about 60, then six), its country a fixed function
    of ``n`` drawn from the real customers' countries. How often each orders follows the
    real curve (the top 1% place 13% of the orders, the top 10% 43%); popularity ranks are
    spread over the numbers by a fixed permutation.
    """

    def __init__(self, seed: int, scale: float):
        spec = MEASURED["customers"]
        self.count = max(1, round(spec["count"] * scale))
        self._first = spec["first_id"]
        self._step = (spec["last_id"] - spec["first_id"]) / (spec["count"] - 1)
        rnd = _random.Random(sub_seed(seed, "customers"))
        self._salt = rnd.getrandbits(64)
        self._offset = rnd.randrange(self.count)
        self._stride = 1
        if self.count > 2:
            self._stride = rnd.randrange(self.count // 3 or 1, self.count)
            while math.gcd(self._stride, self.count) != 1:
                self._stride += 1
        self._tiers = Tiers(LORENZ_RANKS, spec["lorenz"], self.count)
        self._countries = Choice(spec["countries"])

    def draw(self, random) -> int:
        """A customer, as likely as the real ones are to place the next order."""
        return (self._tiers.draw(random) * self._stride + self._offset) % self.count

    def number(self, index: int) -> int:
        return self._first + int(index * self._step)

    def country(self, index: int) -> str:
        return self._countries.at(unit(mix64(self._salt ^ index)))


# ---- the invoices -------------------------------------------------------------------------


class _NonProduct(NamedTuple):
    code: str
    item: Item
    quantities: Choice
    prices: TopAndTail


class _Rule(NamedTuple):
    """A kind of invoice, in a group of countries, has a line of ``code`` with probability
    ``alone + added``: the whole invoice (``alone``) or one line more (``added``)."""

    code: str
    alone: float
    added: float


def _rules() -> dict[tuple[str, str], list[_Rule]]:
    spec = MEASURED["non_product"]
    out: dict[tuple[str, str], list[_Rule]] = {}
    for kind, groups in spec["with"].items():
        if kind == "note":  # a note is a line of a product; its few postage notes are left out
            continue
        for group, codes in groups.items():
            invoices = spec["invoices"][kind][group]
            rules = []
            for code, (having, alone) in codes.items():
                rules.append(_Rule(code, alone / invoices, (having - alone) / invoices))
            out[(kind, group)] = rules
    return out


class Shop:
    """The invoices of :class:`Options`, in time order (see the module docstring)."""

    def __init__(self, options: Options):
        self.options = options
        self.catalogue = Catalogue.build(options.seed)
        self.customers = Customers(options.seed, options.scale)
        self._rnd = _random.Random(sub_seed(options.seed, "invoices"))
        m = MEASURED
        self._kinds = Choice([(k, m["kinds"][k]) for k in KINDS])
        self._lines = {k: Quantiles(LINE_PROBS, v) for k, v in m["lines_per_invoice"].items()}
        tables = {k: TopAndTail(v) for k, v in m["quantities"].items()}
        self._note_quantity = tables["note"].draw
        # per kind of order, per band of the product's list price: how many units a line has
        self._quantities = {kind: {band: tables[f"{kind} {band}"].draw for band in PRICE_BANDS} for kind in ("sale", "dotcom")}
        calendar = m["calendar"]
        self._per_day = calendar["invoices_per_day"]
        self._weekday = {int(k): v for k, v in calendar["weekday_factor"].items()}
        self._month = {int(k): v for k, v in calendar["month_factor"].items()}
        self._sigma = math.sqrt(math.log(1 + calendar["daily_cv"] ** 2))
        self._hours = {int(w): _Hours(h) for w, h in m["hours"].items()}
        self._anonymous = {k: Choice(v) for k, v in m["anonymous_countries"].items()}
        self._note_negative = m["note"]["negative"]
        self._note_texts = Choice(m["note"]["descriptions"])
        regimes = m["prices"]["regimes"]
        self._regimes = {k: _regime_odds(v) for k, v in regimes.items()}
        self._duplicate = m["duplicate_lines"]
        self._straddle = m["straddling_invoices"]
        self._known = m["cancel"]["known_product"]
        self._full = m["cancel"]["full_quantity"]
        numbers = m["invoice_numbers"]
        self._number = numbers["first"]
        # the real numbers leave gaps: 45,223 numbers for 25,900 invoices
        self._gap_log = math.log(1 - 1 / ((numbers["last"] - numbers["first"]) / (m["source"]["invoices"] - 1)))
        self._non_product = {
            code: _NonProduct(code, Item.of(code, spec["description"]), Choice(spec["quantities"]),
                              TopAndTail(spec["prices"], scale=100))
            for code, spec in m["non_product"]["codes"].items()
        }
        self._rules = _rules()
        self._recent: deque[tuple[int, tuple[Line, ...]]] = deque(maxlen=RECENT_ORDERS)

    # ---- the days -------------------------------------------------------------------

    def days(self) -> Iterator[date]:
        """Every calendar day of the run, open or not."""
        for offset in range(self.options.days):
            yield self.options.start + timedelta(days=offset)

    def invoices(self) -> Iterator[Invoice]:
        """Every invoice of the run, in time order (within a day by minute)."""
        for day in self.days():
            if is_open(day):
                yield from self._day(day)

    def _day(self, day: date) -> Iterator[Invoice]:
        rnd = self._rnd
        random = rnd.random
        mean = (self._per_day * self._weekday[day.weekday()] * self._month[day.month] * self.options.scale)
        count = int(mean * math.exp(self._sigma * rnd.normalvariate(0.0, 1.0) - self._sigma ** 2 / 2) + random())
        hours = self._hours[day.weekday()]
        u = 0.0
        for left in range(count, 0, -1):
            # the next of `left` sorted uniforms (order statistics, one at a time: no list of the day's times)
            u = 1.0 - (1.0 - u) * (1.0 - random()) ** (1.0 / left)
            yield self._invoice(day, hours.minute(u))

    def _next_number(self) -> int:
        number = self._number
        self._number += 1 + int(math.log(1.0 - self._rnd.random()) / self._gap_log)
        return number

    # ---- one invoice ----------------------------------------------------------------

    def _invoice(self, day: date, minute: int) -> Invoice:
        random = self._rnd.random
        kind = self._kinds.draw(random)
        if kind == "cancel" and not self._recent:
            kind = "sale"  # nothing to cancel yet: the run's first customer invoice is an order
        number = self._next_number()
        customer: int | None = None
        if kind == "sale":
            index = self.customers.draw(random)
            customer, country = self.customers.number(index), self.customers.country(index)
            lines = self._order(kind, country)
            kept = tuple(line for line in lines if line.item.code not in self._non_product)[:KEPT_LINES]
            if kept:
                self._recent.append((index, kept))
        elif kind == "dotcom":
            country = self._anonymous["dotcom"].draw(random)
            lines = self._order(kind, country)
        elif kind == "cancel":
            lines, index = self._cancellation(kind, None)
            customer, country = self.customers.number(index), self.customers.country(index)
        elif kind == "cancel_anonymous":
            country = self._anonymous["cancel_anonymous"].draw(random)
            lines, _ = self._cancellation(kind, country)
        elif kind == "note":
            country = NO_CUSTOMER_COUNTRY
            lines = [self._note()]
        else:
            country = NO_CUSTOMER_COUNTRY
            line = self._non_product_line("B", negative=False)
            if random() < ADJUST_NEGATIVE:
                line = line._replace(price=price(-line.price.cents))
            lines = [line]
        if len(lines) > 1 and random() < self._straddle:  # the invoice's lines took more than a minute
            cut = 1 + int(random() * (len(lines) - 1))
            lines[cut:] = [line._replace(late=1) for line in lines[cut:]]
        prefix = "C" if kind.startswith("cancel") else "A" if kind == "adjust" else ""
        return Invoice(f"{prefix}{number}", kind, day, minute, customer, country, lines)

    def _extras(self, kind: str, country: str) -> tuple[str | None, list[str]]:
        """The non-product code the invoice consists of (or None), and those added to it."""
        random = self._rnd.random
        rules = self._rules.get((kind, group_of(country)), ())
        added = []
        for rule in rules:
            u = random()
            if u < rule.alone:
                return rule.code, []
            if u < rule.alone + rule.added:
                added.append(rule.code)
        return None, added

    def _order(self, kind: str, country: str) -> list[Line]:
        """An order's lines: products by popularity, the kind's quantities and prices."""
        alone, added = self._extras(kind, country)
        if alone is not None:
            return [self._non_product_line(alone, negative=False)]
        rnd = self._rnd
        random = rnd.random
        draw_product = self.catalogue.draw
        quantity = self._quantities[kind]
        duplicate = self._duplicate
        lines: list[Line] = []
        if kind == "dotcom":
            same, lower = self._regimes["dotcom"]
            for _ in range(max(1, self._lines[kind].rounded(random()))):
                if lines and random() < duplicate:
                    lines.append(lines[int(random() * len(lines))])
                    continue
                product = draw_product(random)
                u = random()
                lines.append(Line(product.item, quantity[product.band](random), product.dotcom if u >= same + lower else
                                  product.list if u < same else product.bulk))
        else:
            big_same, big_lower = self._regimes["bulk_quantity"]
            small_same, small_lower = self._regimes["small_quantity"]
            for _ in range(max(1, self._lines[kind].rounded(random()))):
                if lines and random() < duplicate:
                    lines.append(lines[int(random() * len(lines))])
                    continue
                product = draw_product(random)
                q = quantity[product.band](random)
                u = random()
                if q >= BULK_QUANTITY:
                    p = product.list if u < big_same else product.bulk if u < big_same + big_lower else product.higher
                else:
                    p = product.list if u < small_same else product.bulk if u < small_same + small_lower else product.higher
                lines.append(Line(product.item, q, p))
        for code in added:
            lines.append(self._non_product_line(code, negative=False))
        return lines

    def _cancellation(self, kind: str, country: str | None) -> tuple[list[Line], int]:
        """A ``C`` invoice and its customer. A customer's (``country`` None): most lines undo
        (part of) a line of an order the customer placed lately, one large enough for them
        (large cancellations undo large orders); the others, products bought before that.
        An anonymous one (``country`` given): products, or a fee or charge."""
        rnd = self._rnd
        random = rnd.random
        count = max(1, self._lines[kind].rounded(random()))
        index, ordered = -1, ()
        if country is None:
            known = sum(1 for _ in range(count) if random() < self._known)
            for _ in range(4):  # a few tries for an order with enough lines
                index, ordered = self._recent[int(random() * len(self._recent))]
                if len(ordered) >= known:
                    break
            country = self.customers.country(index)
        else:
            known = 0
        alone, added = self._extras(kind, country)
        if alone is not None:
            return [self._non_product_line(alone, negative=True)], index
        lines = []
        for line in rnd.sample(ordered, min(known, len(ordered))):
            q = line.quantity if line.quantity <= 1 or random() < self._full else 1 + int(random() * (line.quantity - 1))
            lines.append(Line(line.item, -q, line.price))
        for _ in range(count - known):
            product: Product = self.catalogue.draw(random)
            lines.append(Line(product.item, -self._quantities["sale"][product.band](random), product.list))
        for code in added:
            lines.append(self._non_product_line(code, negative=True))
        return lines, index

    def _note(self) -> Line:
        """A stock note: a product, a few units in or (mostly) out, at price 0."""
        random = self._rnd.random
        product = self.catalogue.draw(random)
        text = self._note_texts.draw(random)
        q = self._note_quantity(random)
        return Line(Item.of(product.item.code, text), -q if random() < self._note_negative else q, price(0))

    def _non_product_line(self, code: str, *, negative: bool) -> Line:
        spec = self._non_product[code]
        random = self._rnd.random
        q = spec.quantities.draw(random)
        return Line(spec.item, -q if negative else q, price(spec.prices.draw(random)))


def _regime_odds(counts: dict[str, int]) -> tuple[float, float]:
    """(share at the list price, share at the lower price); the rest is the higher one."""
    total = counts["same"] + counts["lower"] + counts["higher"]
    return counts["same"] / total, counts["lower"] / total


class _Hours:
    """When in the day invoices are made: the real weekday's invoices per hour, uniform
    within each hour."""

    def __init__(self, per_hour: dict):
        hours = sorted((int(h), n) for h, n in per_hour.items())
        total = sum(n for _, n in hours)
        self._hours = [h for h, _ in hours]
        self._shares = [n / total for _, n in hours]

    def minute(self, u: float) -> int:
        for hour, share in zip(self._hours, self._shares):
            if u < share:
                return hour * 60 + min(59, int(u / share * 60))
            u -= share
        return self._hours[-1] * 60 + 59

