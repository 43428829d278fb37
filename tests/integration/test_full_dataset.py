"""The whole real dataset (../shared, absent on a user's clone: skipped with a message)
reads the same from the 305 daily ISO/UTF-8 files and from Kaggle's single-file zip."""
from __future__ import annotations

import csv
import io
import zipfile
from collections import Counter
from decimal import Decimal

import pytest

from pipeline.kaggle import COLUMNS, InvoiceGrouper, iter_source_rows, read_invoices

pytestmark = pytest.mark.full_data


def kaggle_zip(by_day, path):
    """Kaggle's download: one data.csv, ISO-8859-1, ``12/1/2010 8:26``, ``17850``."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in iter_source_rows(str(by_day)):
        values = dict(zip(COLUMNS, row.values))
        date, time_ = values["InvoiceDate"].split(" ")
        year, month, day = date.split("-")
        hour, minute, _ = time_.split(":")
        values["InvoiceDate"] = f"{int(month)}/{int(day)}/{year} {int(hour)}:{minute}"
        values["CustomerID"] = values["CustomerID"].removesuffix(".0")
        writer.writerow([values[c] for c in COLUMNS])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.csv", text.getvalue().encode("iso-8859-1"))
    return path


def digest(source):
    grouper = InvoiceGrouper()
    ids, lines, total = Counter(), 0, Decimal(0)
    for event in read_invoices(str(source), grouper):
        ids[event.event_id] += 1
        lines += len(event.lines)
        total += event.total
    return grouper.errors, ids, lines, total


def test_daily_files_and_kaggles_zip_give_the_same_events(shared_data, tmp_path):
    by_day = shared_data / "by-day"
    errors, ids, lines, total = digest(by_day)
    assert errors == []
    assert (sum(ids.values()), lines, total) == (25_900, 541_909, Decimal("9747747.934"))
    assert max(ids.values()) == 1  # one event per invoice: nothing split, nothing merged
    z_errors, z_ids, z_lines, z_total = digest(kaggle_zip(by_day, tmp_path / "archive.zip"))
    assert z_errors == [] and (z_ids, z_lines, z_total) == (ids, lines, total)
