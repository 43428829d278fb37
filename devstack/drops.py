"""``shopstream drop FILE…``: daily transaction files into the drop bucket, and their outcomes.

Each file is uploaded under the hive-style key of its dates, read from its rows:
``transactions/year=2011/month=03/day=15/<name>`` for a file of one day,
``transactions/from=2010-12-01/to=2011-12-09/<name>`` for a range. The bucket's
object-created notification hands it to the file loader (``batch/``); with ``--wait``
(the default) the command then waits for each file's outcome in the loader's ledger
and prints it: rows, invoices, lines, exact total, rejected rows by reason.
"""
from __future__ import annotations

import csv
import hashlib
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pipeline.errors import SourceError
from pipeline.events import money_display
from pipeline.kaggle import iter_source_rows, parse_timestamp, resolve_sources
from pipeline.transactions import COLUMNS as TRANSACTION_COLUMNS
from pipeline.transactions import parse_when

_DATE = 4  # InvoiceDate in pipeline.kaggle.COLUMNS order


def _dates(path: str):
    """Each row's timestamp text, in either layout (the Kaggle reader's, or the transaction layout's)."""
    with open(path, "rb") as fh:
        header = fh.readline().decode("utf-8", "replace").lstrip("\ufeff")
    columns = [c.strip() for c in next(csv.reader([header]), [])]
    if all(c in columns for c in TRANSACTION_COLUMNS):
        at = columns.index("transaction_date")
        with open(path, encoding="utf-8", errors="replace", newline="") as fh:
            reader = csv.reader(fh)
            next(reader, None)
            for values in reader:
                if len(values) > at:
                    yield parse_when(values[at])
        return
    for row in iter_source_rows(path):
        if row.values is not None:
            yield parse_timestamp(row.values[_DATE])


def file_dates(path: str) -> tuple[str, str]:
    """The first and last day (``YYYY-MM-DD``) of a file's readable rows."""
    first = last = None
    for when in _dates(path):
        if when is None:
            continue
        day = when[:10]
        if first is None or day < first:
            first = day
        if last is None or day > last:
            last = day
    if first is None or last is None:
        raise SourceError(f"{path}: no row with a readable InvoiceDate (or transaction_date); nothing to name its "
                          "key by")
    return first, last


def drop_key(path: str) -> str:
    first, last = file_dates(path)
    name = os.path.basename(path)
    if first == last:
        year, month, day = first.split("-")
        return f"transactions/year={year}/month={month}/day={day}/{name}"
    return f"transactions/from={first}/to={last}/{name}"


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Dropped:
    path: str
    key: str
    sha256: str
    outcome: dict[str, Any] | None = None  # the ledger's record, once the loader is done


def csv_files(paths: Iterable[str]) -> list[str]:
    files: list[str] = []
    for path in paths:
        for file in resolve_sources(path):
            if not file.lower().endswith(".csv"):
                raise SourceError(f"{file}: only .csv files are dropped (unzip Kaggle's archive: its data.csv)")
            files.append(file)
    return files


def in_bucket(s3: Any, bucket: str) -> Callable[[str], bool]:
    def exists(key: str) -> bool:
        return bool(s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("KeyCount"))
    return exists


def upload(s3: Any, bucket: str, files: list[str], *, progress: Callable[[str], None] = lambda _: None) -> list[Dropped]:
    dropped = []
    for file in files:
        key = drop_key(file)
        s3.upload_file(file, bucket, key)
        dropped.append(Dropped(file, key, sha256_of(file)))
        progress(key)
    return dropped


def wait_for_outcomes(ledger: Any, dropped: list[Dropped], *, timeout: float,
                      progress: Callable[[Dropped], None] = lambda _: None, poll: float = 0.5,
                      still_dropped: Callable[[str], bool] = lambda key: False) -> list[Dropped]:
    """Until the loader has recorded (and announced) every file's outcome and taken each loaded file out of
    the drop bucket (``still_dropped(key)``: a re-dropped file's outcome is in the ledger before the loader
    has seen it); raises TimeoutError naming the rest."""
    deadline = time.monotonic() + timeout
    waiting = {d.sha256: d for d in dropped}
    while waiting:
        for sha, item in list(waiting.items()):
            record = ledger.get(sha)
            done = record is not None and record.get("status") in ("loaded", "failed") and record.get("message_id")
            if done and record.get("status") == "loaded" and any(
                    still_dropped(d.key) for d in dropped if d.sha256 == sha):
                done = False
            if done:
                item.outcome = record
                for other in dropped:  # the same content dropped under two names has one outcome
                    if other.sha256 == sha:
                        other.outcome = record
                del waiting[sha]
                progress(item)
        if waiting:
            if time.monotonic() > deadline:
                names = ", ".join(d.key for d in list(waiting.values())[:5])
                raise TimeoutError(f"{len(waiting)} file(s) not loaded within {timeout:.0f} s: {names}"
                                   f"{' …' if len(waiting) > 5 else ''} (is the runtime up? shopstream status)")
            time.sleep(poll)
    return dropped


def format_outcomes(dropped: list[Dropped]) -> str:
    lines, totals = [], {"rows": 0, "invoices": 0, "lines": 0, "rejected": 0}
    failed = 0
    for item in dropped:
        record = item.outcome or {}
        if record.get("status") == "failed":
            failed += 1
            lines.append(f"  FAILED  {item.key}: {record.get('error')}")
            continue
        counts = record.get("counts") or {}
        for name in totals:
            totals[name] += int(counts.get(name, 0))
        rejected = counts.get("rejected", 0)
        lines.append(f"  loaded  {item.key}: {counts.get('rows', 0):,} rows, {counts.get('invoices', 0):,} invoices, "
                     f"{counts.get('lines', 0):,} lines, total {money_display(counts.get('total', '0'))}"
                     + (f", {rejected:,} rejected" if rejected else ""))
        for reason, count in (counts.get("rejected_by_reason") or {}).items():
            lines.append(f"            {count:>7,}  {reason}")
    shown = lines if len(lines) <= 40 else lines[:20] + [f"  … {len(lines) - 40} more lines …"] + lines[-20:]
    summary = (f"dropped {len(dropped)} file(s): {len(dropped) - failed} loaded, {failed} failed; "
               f"{totals['rows']:,} rows, {totals['invoices']:,} invoices, {totals['lines']:,} lines, "
               f"{totals['rejected']:,} rejected")
    return "\n".join([*shown, summary])
