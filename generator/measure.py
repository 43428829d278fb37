"""Measure the real data's shape: the parameters the generator is built from.

    python -m generator.measure ../shared/data/online-retail/by-day > /tmp/measured.py

Prints one Python literal, :data:`generator.params.MEASURED` (a contract test compares the
two when the real data is present). It reads any source :mod:`pipeline.kaggle` reads, in
either format, streaming rows; only per-invoice summaries and per-product tallies are
kept (a few MB for the whole year).

Every invoice is put in one of six kinds (:func:`kind_of`), because the real shop's
invoices come from visibly different processes:

* ``sale`` — a customer's order (a customer number, no prefix);
* ``dotcom`` — an order without a customer number: the web shop's own sales, large, at
  about twice the list price, most with a ``DOT`` (dotcom postage) line;
* ``note`` — a one-line stock note without a customer, at price 0 (most have no
  description, others "check", "damaged", …; two thirds have a negative quantity);
* ``cancel`` — a ``C`` invoice of a customer (negative quantities, most of products that
  customer bought before);
* ``cancel_anonymous`` — a ``C`` invoice without a customer (Amazon fees, bank charges,
  manual corrections);
* ``adjust`` — an ``A`` invoice ("Adjust bad debt").

Quantities depend on the price: a shop's customers buy cheap things by the dozen and
dear ones by the piece, so the quantity tables of orders are per band of the product's
list price (:data:`~generator.params.PRICE_BANDS`).

Rounding: shares to 4 decimals, ratios to 3, prices to the cent, counts exact.
"""
from __future__ import annotations

import math
import pprint
import statistics
import sys
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

from generator.params import (
    BULK_QUANTITY,
    GROUPS,
    KINDS,
    LINE_PROBS,
    LORENZ_RANKS,
    PRICE_BANDS,
    RATIO_PROBS,
    TAIL_PROBS,
    TOP_PRICES,
    TOP_QUANTITIES,
    band_of,
    group_of,
)
from pipeline.events import NON_PRODUCT_STOCK_CODES, money_str
from pipeline.kaggle import iter_source_rows, parse_timestamp


def kind_of(invoice_no: str, customer: str | None, lines: list[tuple]) -> str:
    """The kind of a real invoice (see the module docstring); ``lines`` are
    ``(code, description, quantity, price)``."""
    prefix = invoice_no[:1].upper()
    if prefix == "C":
        return "cancel" if customer else "cancel_anonymous"
    if prefix == "A":
        return "adjust"
    if customer:
        return "sale"
    if len(lines) == 1 and lines[0][3] == 0:
        return "note"
    return "dotcom"


def is_non_product(code: str) -> bool:
    return code.upper() in NON_PRODUCT_STOCK_CODES


def _share(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole else 0.0


def _quantiles(sorted_values: list, probs: tuple[float, ...]) -> list:
    """Nearest-rank quantiles of already sorted values."""
    n = len(sorted_values)
    return [sorted_values[min(n - 1, max(0, math.ceil(p * n) - 1))] for p in probs] if n else []


def _table(counter: Counter, top: int, *, money: bool = False) -> dict:
    """The ``top`` most common values with their counts, and quantiles of the others."""
    common = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    kept = {v for v, _ in common}
    rest = sorted(v for v, n in counter.items() if v not in kept for _ in range(n))
    show = money_str if money else (lambda v: v)
    return {"top": [[show(v), n] for v, n in common], "rest": len(rest),
            "rest_quantiles": [show(v) for v in _quantiles(rest, TAIL_PROBS)]}


def _lorenz(counts: list[int]) -> list[float]:
    """Cumulative share of the total held by the top ranks at :data:`LORENZ_RANKS`."""
    ordered = sorted(counts, reverse=True)
    total = sum(ordered)
    out, running, taken = [], 0, 0
    for fraction in LORENZ_RANKS:
        upto = max(1, round(fraction * len(ordered)))
        running += sum(ordered[taken:upto])
        taken = upto
        out.append(_share(running, total))
    return out


def _ratios(values: list[float]) -> list[float]:
    return [round(v, 3) for v in _quantiles(sorted(values), RATIO_PROBS)]


def measure(path: str) -> dict:
    """The parameters of the data behind ``path`` (see the module docstring)."""
    invoices: dict[str, dict] = {}
    for row in iter_source_rows(path):
        if row.values is None:
            continue
        no, code, description, quantity, when, price, customer, country = row.values
        customer = customer.strip().removesuffix(".0") or None
        invoice = invoices.get(no)
        if invoice is None:
            invoice = invoices[no] = {"customer": customer, "country": country, "when": parse_timestamp(when),
                                      "stamps": set(), "lines": []}
        invoice["stamps"].add(when)
        invoice["lines"].append((code, description, int(quantity), Decimal(price)))

    kinds = Counter()
    lines_of = defaultdict(list)
    per_day: Counter = Counter()
    hours: dict[int, Counter] = defaultdict(Counter)
    quantities: dict[str, Counter] = defaultdict(Counter)
    note_negative = 0
    note_descriptions: Counter = Counter()
    customer_country: dict[str, str] = {}
    customer_sales: Counter = Counter()
    anonymous_countries: dict[str, Counter] = defaultdict(Counter)
    product_sales: Counter = Counter()
    product_prices: dict[str, Counter] = defaultdict(Counter)
    group_invoices: dict[str, Counter] = defaultdict(Counter)
    non_product: dict[str, dict[str, dict[str, list[int]]]] = defaultdict(lambda: defaultdict(dict))
    np_lines: dict[str, list[tuple[str, int, Decimal]]] = defaultdict(list)
    duplicates = straddling = 0
    kind_invoice: dict[str, str] = {}

    for no, invoice in invoices.items():
        lines = invoice["lines"]
        kind = kind_of(no, invoice["customer"], lines)
        kind_invoice[no] = kind
        kinds[kind] += 1
        lines_of[kind].append(len(lines))
        start = datetime.fromisoformat(invoice["when"])
        per_day[start.date()] += 1
        hours[start.weekday()][start.hour] += 1
        straddling += len(invoice["stamps"]) > 1
        seen = set()
        for line in lines:
            duplicates += line in seen
            seen.add(line)
        group = group_of(invoice["country"])
        group_invoices[kind][group] += 1
        codes = []
        for code, description, quantity, price in lines:
            if is_non_product(code):
                np_lines[code.upper()].append((description, quantity, price))
                codes.append(code.upper())
                continue
            if kind in ("sale", "dotcom"):
                product_sales[code] += 1
            if kind == "sale":
                product_prices[code][price] += 1
        for code in sorted(set(codes)):
            entry = non_product[kind][group].setdefault(code, [0, 0])
            entry[0] += 1
            entry[1] += len(lines) == 1
        if kind == "note":
            quantity = lines[0][2]
            quantities["note"][abs(quantity)] += 1
            note_negative += quantity < 0
            note_descriptions[lines[0][1] or ""] += 1
        elif kind == "sale":
            customer_country.setdefault(invoice["customer"], invoice["country"])
            customer_sales[invoice["customer"]] += 1
        elif kind in ("dotcom", "cancel_anonymous"):
            anonymous_countries[kind][invoice["country"]] += 1

    # prices: each product's list price is its most common price on customers' orders
    list_price = {code: max(prices.items(), key=lambda kv: (kv[1], -kv[0]))[0] for code, prices in product_prices.items()}
    regimes = {"bulk_quantity": Counter(), "small_quantity": Counter(), "dotcom": Counter()}
    lower, higher, dotcom_higher = [], [], []
    cancel = Counter()
    last_bought: dict[tuple[str, str], int] = {}
    for no, invoice in invoices.items():
        kind = kind_invoice[no]
        for code, _, quantity, price in invoice["lines"]:
            if kind == "cancel" and not is_non_product(code):
                before = last_bought.get((invoice["customer"], code))
                cancel["known" if before is not None else "unknown"] += 1
                if before is not None:
                    cancel["full" if -quantity == before else "part"] += 1
            base = list_price.get(code)
            if kind not in ("sale", "dotcom") or not base or is_non_product(code):
                continue
            quantities[f"{kind} {band_of(base)}"][quantity] += 1
            ratio = float(price / base)
            regime = "same" if price == base else "lower" if price < base else "higher"
            if kind == "dotcom":
                regimes["dotcom"][regime] += 1
                if regime == "higher":
                    dotcom_higher.append(ratio)
                continue
            regimes["bulk_quantity" if quantity >= BULK_QUANTITY else "small_quantity"][regime] += 1
            (lower if regime == "lower" else higher if regime == "higher" else []).append(ratio)
        if kind == "sale":
            for code, _, quantity, _ in invoice["lines"]:
                last_bought[(invoice["customer"], code)] = quantity

    days = sorted(per_day)
    trading = Counter(d.weekday() for d in days)
    weekday_invoices = Counter()
    month_invoices, month_days = Counter(), Counter()
    for day, n in per_day.items():
        weekday_invoices[day.weekday()] += n
        month_invoices[day.month] += n
        month_days[day.month] += 1
    mean_per_day = len(invoices) / len(days)
    groups = defaultdict(list)
    for day, n in per_day.items():
        groups[(day.weekday(), day.month)].append(n)
    cvs = [statistics.pstdev(v) / statistics.mean(v) for v in groups.values() if len(v) >= 3]
    cv = statistics.mean(cvs) if cvs else 0.0
    closed = []
    day = days[0]
    while day <= days[-1]:
        if day not in per_day and day.weekday() != 5:
            closed.append(day.isoformat())
        day += timedelta(days=1)

    customers = sorted(int(c) for c in customer_country)
    numbers = sorted(int(no.lstrip("CcAa")) for no in invoices)
    codes = [c for c in product_sales]
    shapes = Counter(_shape(c) for c in codes)
    descriptions = {}
    for invoice in invoices.values():
        for code, description, _, _ in invoice["lines"]:
            if code in product_sales and description and description == description.upper():
                descriptions.setdefault(code, description)
    texts = list(descriptions.values())

    return {
        "source": {"days": len(days), "first_day": days[0].isoformat(), "last_day": days[-1].isoformat(),
                   "lines": sum(len(i["lines"]) for i in invoices.values()), "invoices": len(invoices),
                   "lines_without_customer": sum(len(i["lines"]) for i in invoices.values() if not i["customer"])},
        "kinds": {k: kinds[k] for k in KINDS},
        "lines_per_invoice": {k: _quantiles(sorted(lines_of[k]), LINE_PROBS) for k in ("sale", "dotcom", "cancel", "cancel_anonymous")},
        "lines_mean": {k: round(statistics.mean(lines_of[k]), 3) for k in KINDS if lines_of[k]},
        "quantities": {k: _table(quantities[k], TOP_QUANTITIES)
                       for k in [f"{kind} {band}" for kind in ("sale", "dotcom") for band in PRICE_BANDS] + ["note"]},
        "note": {"negative": _share(note_negative, kinds["note"]),
                 "descriptions": [[d, n] for d, n in sorted(note_descriptions.items(), key=lambda kv: (-kv[1], kv[0]))[:20]]},
        "calendar": {"invoices_per_day": round(mean_per_day, 3),
                     "weekday_factor": {w: round(weekday_invoices[w] / trading[w] / mean_per_day, 4) if trading[w] else 0.0
                                        for w in range(7)},
                     "month_factor": {m: round(month_invoices[m] / month_days[m] / mean_per_day, 4) if month_days[m] else 0.0
                                      for m in range(1, 13)},
                     "daily_cv": round(cv, 4), "closed_weekdays": closed},
        "hours": {w: dict(sorted(hours[w].items())) for w in range(7) if hours[w]},
        "customers": {"count": len(customers), "first_id": customers[0], "last_id": customers[-1],
                      "countries": _ranked(Counter(customer_country.values())),
                      "lorenz": _lorenz(list(customer_sales.values()))},
        "anonymous_countries": {k: _ranked(anonymous_countries[k]) for k in ("dotcom", "cancel_anonymous")},
        "products": {"count": len(codes), "lorenz": _lorenz(list(product_sales.values())),
                     "shapes": dict(sorted(shapes.items())),
                     "prefixes": _ranked(Counter(c[:2] for c in codes if c[:5].isdigit())),
                     "trailing_space": _share(sum(t.endswith(" ") for t in texts), len(texts)),
                     "comma": _share(sum("," in t for t in texts), len(texts)),
                     "quote": _share(sum('"' in t for t in texts), len(texts)),
                     "words_mean": round(statistics.mean(len(t.split()) for t in texts), 3)},
        "prices": {"list": _table(Counter(list_price.values()), TOP_PRICES, money=True),
                   # products and their order lines per band: dear products are the less popular ones
                   "bands": {band: [sum(1 for c in product_sales if c in list_price and band_of(list_price[c]) == band),
                                    sum(n for c, n in product_sales.items() if c in list_price and band_of(list_price[c]) == band)]
                             for band in PRICE_BANDS},
                   "regimes": {k: {r: v[r] for r in ("same", "lower", "higher")} for k, v in regimes.items()},
                   "lower_ratio": _ratios(lower), "higher_ratio": _ratios(higher), "dotcom_ratio": _ratios(dotcom_higher)},
        "non_product": {
            "invoices": {k: {g: group_invoices[k][g] for g in GROUPS} for k in KINDS},
            "with": {k: {g: dict(sorted(non_product[k][g].items())) for g in GROUPS if non_product[k][g]}
                     for k in KINDS if k in non_product},
            "codes": {code: _np_code(rows) for code, rows in sorted(np_lines.items())},
        },
        "duplicate_lines": _share(duplicates, sum(len(i["lines"]) for i in invoices.values())),
        "straddling_invoices": _share(straddling, len(invoices)),
        "cancel": {"known_product": _share(cancel["known"], cancel["known"] + cancel["unknown"]),
                   "full_quantity": _share(cancel["full"], cancel["full"] + cancel["part"])},
        "invoice_numbers": {"first": numbers[0], "last": numbers[-1]},
    }


def _shape(code: str) -> str:
    digits = len(code) - len(code.lstrip("0123456789"))
    if digits == 5 and len(code) == 5:
        return "5 digits"
    if digits == 5 and code[5:].isalpha():
        return "5 digits and a letter" if len(code) == 6 else "5 digits and letters"
    return "other"


def _ranked(counter: Counter) -> list[list]:
    return [[k, n] for k, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]


def _np_code(rows: list[tuple[str, int, Decimal]]) -> dict:
    descriptions = Counter(d for d, _, _ in rows if d)
    return {"description": max(descriptions.items(), key=lambda kv: (kv[1], kv[0]))[0] if descriptions else "",
            # the quantities seen more than once (DOT once had 1,000: postage is not bought by the thousand)
            "quantities": [[q, n] for q, n in _ranked(Counter(abs(q) for _, q, _ in rows))[:5] if n > 1],
            "prices": _table(Counter(abs(p) for _, _, p in rows), 4, money=True)}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    print(f"# measured by `python -m generator.measure {args[0]}`")
    print("MEASURED = " + pprint.pformat(measure(args[0]), width=118, compact=True, sort_dicts=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
