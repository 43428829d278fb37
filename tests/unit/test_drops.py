"""shopstream drop: the hive-style keys files are dropped under, and the outcome summary."""
from __future__ import annotations

from pathlib import Path

import pytest

from devstack import drops
from pipeline.errors import SourceError

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"


def test_a_file_of_one_day_is_keyed_by_its_day(tmp_path: Path):
    day = tmp_path / "transactions_2011-03-15.csv"
    day.write_text(HEADER + "1,A,x,1,3/15/2011 8:26,1.5,17850,United Kingdom\n"
                            "2,A,x,1,2011-03-15 17:00:00,1.5,17850,United Kingdom\n")
    assert drops.drop_key(str(day)) == "transactions/year=2011/month=03/day=15/transactions_2011-03-15.csv"


def test_a_file_of_several_days_is_keyed_by_its_range_whatever_the_row_order(tmp_path: Path):
    span = tmp_path / "data.csv"
    span.write_text(HEADER + "1,A,x,1,2011-12-09 08:00:00,1.5,,France\n"
                             "2,A,x,1,not a date,1.5,,France\n"
                             "3,A,x,1,12/1/2010 8:26,1.5,,France\n")
    assert drops.drop_key(str(span)) == "transactions/from=2010-12-01/to=2011-12-09/data.csv"


def test_a_file_without_a_readable_date_is_refused_before_upload(tmp_path: Path):
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "1,A,x,1,someday,1.5,,France\n")
    with pytest.raises(SourceError, match="no row with a readable InvoiceDate"):
        drops.drop_key(str(bad))


def test_only_csv_files_are_dropped(tmp_path: Path):
    (tmp_path / "a.zip").write_bytes(b"PK")
    with pytest.raises(SourceError, match="only .csv files"):
        drops.csv_files([str(tmp_path / "a.zip")])


def test_the_summary_adds_up_the_files_and_names_failures():
    loaded = drops.Dropped("a.csv", "transactions/a.csv", "1", {"status": "loaded", "counts": {
        "rows": 10, "invoices": 2, "lines": 8, "total": "12.5", "rejected": 2,
        "rejected_by_reason": {"Quantity: must be an integer": 2}}})
    failed = drops.Dropped("b.csv", "transactions/b.csv", "2", {"status": "failed", "error": "missing column(s) X"})
    text = drops.format_outcomes([loaded, failed])
    assert "FAILED  transactions/b.csv: missing column(s) X" in text
    assert "2  Quantity: must be an integer" in text
    assert text.splitlines()[-1] == ("dropped 2 file(s): 1 loaded, 1 failed; 10 rows, 2 invoices, 8 lines, "
                                     "2 rejected")


def test_waiting_names_the_files_still_not_loaded():
    class Ledger:
        def get(self, sha):
            return {"status": "loaded", "message_id": "m", "counts": {}} if sha == "1" else None

    items = [drops.Dropped("a", "transactions/a.csv", "1"), drops.Dropped("b", "transactions/b.csv", "2")]
    with pytest.raises(TimeoutError, match=r"1 file\(s\) not loaded .*transactions/b.csv"):
        drops.wait_for_outcomes(Ledger(), items, timeout=0.2, poll=0.05)
    assert items[0].outcome["status"] == "loaded"


def test_a_transaction_layout_file_is_keyed_by_its_transaction_dates(tmp_path: Path):
    day = tmp_path / "transactions_2023-03-15.csv"
    day.write_text("transaction_id,customer_id,product_id,quantity,price,transaction_date,payment_type,status\n"
                   "T1,17850,85123A,1,2.55,2023-03-15,card,completed\n"
                   "T2,17850,85123A,1,2.55,2023-03-15 18:00:00,card,pending\n")
    assert drops.drop_key(str(day)) == "transactions/year=2023/month=03/day=15/transactions_2023-03-15.csv"
