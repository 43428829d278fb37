"""Writing generated invoices as the real files are written, row by row.

Two formats, the two the real data comes in (and :mod:`pipeline.kaggle` reads):

* ``daily`` — the daily files': UTF-8, ``2010-12-01 08:26:00``, customer ``17850.0``;
* ``kaggle`` — Kaggle's ``data.csv``: ISO-8859-1 (``£`` is the byte 0xA3),
  ``12/1/2010 8:26``, customer ``17850``.

Either as one file per trading day named like the real ones (``2010-12-01.csv``; closed
days have none), or as one file ``data.csv``. Prices are spelt as the real files spell
them (``2.1``, ``18.0``), fields are quoted only when they hold a comma or a quote, lines
end with ``\\n``. Each file is written under a temporary name and renamed when complete, so
a reader never sees half a file. Memory is one invoice and the file's buffer.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import IO

from generator.catalogue import csv_field
from generator.shop import Invoice
from pipeline.kaggle import COLUMNS

FORMATS = ("daily", "kaggle")
ONE_FILE = "data.csv"  # the name of the file inside Kaggle's download
HEADER = ",".join(COLUMNS) + "\n"
_BUFFER = 1 << 20


@dataclass(frozen=True, slots=True)
class Format:
    name: str
    encoding: str
    stamp: Callable[[date, int, int], str]  # (day, hour, minute) -> InvoiceDate
    customer: Callable[[int | None], str]  # customer number -> CustomerID


def _daily_stamp(day: date, hour: int, minute: int) -> str:
    return f"{day.isoformat()} {hour:02d}:{minute:02d}:00"


def _kaggle_stamp(day: date, hour: int, minute: int) -> str:
    return f"{day.month}/{day.day}/{day.year} {hour}:{minute:02d}"


FORMAT = {
    "daily": Format("daily", "utf-8", _daily_stamp, lambda c: "" if c is None else f"{c}.0"),
    "kaggle": Format("kaggle", "iso-8859-1", _kaggle_stamp, lambda c: "" if c is None else str(c)),
}


@lru_cache(maxsize=256)
def _country(country: str) -> str:
    return csv_field(country)


def rows(invoice: Invoice, fmt: Format) -> str:
    """The invoice's CSV rows, each ending with a newline."""
    number = invoice.number
    hour, minute = invoice.stamp()
    stamp = fmt.stamp(invoice.day, hour, minute)
    tail = f",{fmt.customer(invoice.customer)},{_country(invoice.country)}\n"
    out = []
    for line in invoice.lines:
        when = stamp if not line.late else fmt.stamp(invoice.day, *invoice.stamp(line.late))
        out.append(f"{number},{line.item.field},{line.quantity},{when},{line.price.text}{tail}")
    return "".join(out)


@dataclass
class Written:
    """What a run wrote, as it goes (:func:`write` updates it invoice by invoice)."""

    invoices: int = 0
    lines: int = 0
    lines_without_customer: int = 0
    cancellations: int = 0
    adjustments: int = 0
    cents: int = 0  # the net total, quantity × price over every line, in pence
    bytes: int = 0
    files: list[str] = field(default_factory=list)
    day: date | None = None  # the day being written

    def count(self, invoice: Invoice) -> None:
        n = len(invoice.lines)
        self.invoices += 1
        self.lines += n
        if invoice.customer is None:
            self.lines_without_customer += n
        if invoice.number[0] == "C":
            self.cancellations += 1
        elif invoice.number[0] == "A":
            self.adjustments += 1
        self.cents += invoice.cents

    def follow(self, invoices: Iterable[Invoice]) -> Iterator[Invoice]:
        """Count ``invoices`` as they pass (when nothing is written)."""
        for invoice in invoices:
            self.count(invoice)
            yield invoice


class _File:
    """One output file, written under a temporary name and renamed when closed."""

    def __init__(self, path: str, encoding: str):
        self.path = path
        self._partial = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.partial")
        self._fh: IO[str] = open(self._partial, "w", encoding=encoding, newline="", buffering=_BUFFER)
        self._fh.write(HEADER)

    def write(self, text: str) -> None:
        self._fh.write(text)

    def close(self) -> int:
        self._fh.close()
        os.replace(self._partial, self.path)
        return os.path.getsize(self.path)

    def abandon(self) -> None:
        self._fh.close()
        os.remove(self._partial)


def write(invoices: Iterable[Invoice], out_dir: str, *, fmt: str = "daily", one_file: bool = False,
          written: Written | None = None) -> Iterator[Invoice]:
    """Write ``invoices`` under ``out_dir`` while passing each on (so a caller can also
    send them, or count them); ``written`` is updated as it goes. Consume the result to
    write; files are complete once it is exhausted."""
    spec = FORMAT[fmt]
    written = written if written is not None else Written()
    os.makedirs(out_dir, exist_ok=True)
    current: _File | None = _File(os.path.join(out_dir, ONE_FILE), spec.encoding) if one_file else None
    try:
        for invoice in invoices:
            if invoice.day != written.day:
                if current is not None and not one_file:
                    written.bytes += current.close()
                    written.files.append(current.path)
                    current = None
                if current is None:
                    current = _File(os.path.join(out_dir, f"{invoice.day.isoformat()}.csv"), spec.encoding)
                written.day = invoice.day
            current.write(rows(invoice, spec))  # type: ignore[union-attr]
            written.count(invoice)
            yield invoice
    except BaseException:
        if current is not None:
            current.abandon()
        raise
    if current is not None:
        written.bytes += current.close()
        written.files.append(current.path)
