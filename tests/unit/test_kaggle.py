"""Reading Kaggle/UCI Online Retail sources into invoice events (pipeline/kaggle.py)."""
from __future__ import annotations

import gzip
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.errors import SourceError
from pipeline.kaggle import InvoiceGrouper, parse_row, parse_timestamp, read_invoices
from tests.conftest import SAMPLE
from tests.factories import raw_row

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
ROWS = (
    '536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850,United Kingdom\n'
    '536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850,United Kingdom\n'
    '536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850,United Kingdom\n'  # exact duplicate line
    '536381,82567,"AIRLINE LOUNGE,METAL SIGN",2,12/1/2010 9:41,2.1,15311,United Kingdom\n'
    '536381,22041,"RECORD FRAME 7"" SINGLE SIZE ",48,12/1/2010 9:41,2.1,15311,United Kingdom\n'
    '539492,gift_0001_40,Dotcomgiftshop Gift Voucher \u00a340.00,1,12/20/2010 10:14,34.04,,United Kingdom\n'
    'C536379,D,Discount,-1,12/1/2010 9:41,27.5,14527,United Kingdom\n'
    'A563186,B,Adjust bad debt,1,8/12/2011 14:51,-11062.06,,United Kingdom\n'
    '536414,22139,,56,12/1/2010 11:52,0,,United Kingdom\n'
)


def write_latin1_zip(path: Path, text: str) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.csv", text.encode("iso-8859-1"))
    return path


def by_no(events):
    return {e.invoice_no: e for e in events}


def test_kaggle_zip_as_served_iso_8859_1(tmp_path):
    # GIVEN Kaggle's zip: data.csv inside, ISO-8859-1 (the pound sign is the byte 0xA3)
    source = write_latin1_zip(tmp_path / "archive.zip", HEADER + ROWS)
    grouper = InvoiceGrouper()
    # WHEN it is read
    events = by_no(read_invoices(str(source), grouper))
    # THEN every quirk survives into the events
    assert grouper.errors == []
    assert set(events) == {"536365", "536381", "539492", "C536379", "A563186", "536414"}
    first = events["536365"]
    assert [item.line_no for item in first.lines] == [1, 2, 3]  # the repeated line is kept
    assert first.lines[1].stock_code == first.lines[2].stock_code == "71053"
    assert first.invoice_date == "2010-12-01T08:26:00" and first.customer_id == "17850"
    assert [item.description for item in events["536381"].lines] == ["AIRLINE LOUNGE,METAL SIGN", 'RECORD FRAME 7" SINGLE SIZE ']
    assert events["539492"].lines[0].description == "Dotcomgiftshop Gift Voucher \u00a340.00"
    assert events["539492"].customer_id is None
    assert events["C536379"].is_cancellation and events["C536379"].has_non_product_lines
    assert events["A563186"].is_adjustment and events["A563186"].total == Decimal("-11062.06")
    assert events["536414"].lines[0].description is None and events["536414"].total == 0


def test_both_encodings_and_timestamp_styles_give_the_same_events(tmp_path):
    iso = (HEADER + ROWS).replace("12/1/2010 8:26", "2010-12-01 08:26:00").replace(",17850,", ",17850.0,")
    (tmp_path / "utf8.csv").write_text(iso, encoding="utf-8")
    write_latin1_zip(tmp_path / "kaggle.zip", HEADER + ROWS)
    a = by_no(read_invoices(str(tmp_path / "utf8.csv")))
    b = by_no(read_invoices(str(tmp_path / "kaggle.zip")))
    assert a["536365"] == b["536365"]
    assert a["539492"] == b["539492"]


def test_directory_glob_and_gzip_sources(tmp_path):
    days = tmp_path / "by-day"
    days.mkdir()
    (days / "2010-12-01.csv").write_text(HEADER + ROWS.splitlines(True)[0], encoding="utf-8")
    (days / "2010-12-02.csv").write_text(HEADER + ROWS.splitlines(True)[3], encoding="utf-8")
    with gzip.open(tmp_path / "one.csv.gz", "wt", encoding="utf-8") as fh:
        fh.write(HEADER + ROWS.splitlines(True)[6])
    assert [e.invoice_no for e in read_invoices(str(days))] == ["536365", "536381"]
    assert [e.invoice_no for e in read_invoices(str(days / "*-02.csv"))] == ["536381"]
    assert [e.invoice_no for e in read_invoices(str(tmp_path / "one.csv.gz"))] == ["C536379"]


def test_bad_rows_are_reported_with_file_and_line_and_the_rest_is_read(tmp_path):
    text = HEADER + ROWS.splitlines(True)[0] + "536366,22633,HAND WARMER,six,12/1/2010 8:28,1.85,17850,United Kingdom\n" \
        + "536367,84879,BIRD ORNAMENT,32,not a date,1.69,13047,United Kingdom\n" + "536368,too,few\n"
    (tmp_path / "bad.csv").write_text(text, encoding="utf-8")
    grouper = InvoiceGrouper()
    events = list(read_invoices(str(tmp_path / "bad.csv"), grouper))
    assert [e.invoice_no for e in events] == ["536365"]
    assert [(Path(e.source).name, e.line) for e in grouper.errors] == [("bad.csv", 3), ("bad.csv", 4), ("bad.csv", 5)]
    assert "Quantity" in grouper.errors[0].reason and "InvoiceDate" in grouper.errors[1].reason
    assert "expected 8 fields" in grouper.errors[2].reason


def test_an_invoice_split_by_other_rows_is_grouped_whole(tmp_path):
    rows = ROWS.splitlines(True)
    text = HEADER + rows[0] + rows[3] + rows[1] + rows[4] + rows[2]  # 536365 and 536381 interleaved
    (tmp_path / "split.csv").write_text(text, encoding="utf-8")
    events = by_no(read_invoices(str(tmp_path / "split.csv")))
    assert len(events["536365"].lines) == 3 and len(events["536381"].lines) == 2


def test_a_row_arriving_after_its_invoice_was_emitted_is_reported_not_split(tmp_path):
    rows = ROWS.splitlines(True)
    text = HEADER + rows[0] + rows[3] + rows[4] + rows[6] + rows[1]
    (tmp_path / "late.csv").write_text(text, encoding="utf-8")
    grouper = InvoiceGrouper(window=2)
    events = list(read_invoices(str(tmp_path / "late.csv"), grouper))
    assert [e.invoice_no for e in events].count("536365") == 1
    assert len(grouper.errors) == 1 and "536365" in grouper.errors[0].reason and grouper.errors[0].line == 6


def test_rows_of_one_invoice_dated_a_minute_apart(tmp_path):
    text = HEADER + "536591,21731,RED TOADSTOOL LED NIGHT LIGHT,24,12/1/2010 16:57,1.65,14606,United Kingdom\n" \
        "536591,22745,POPPY'S PLAYHOUSE BEDROOM,6,12/1/2010 16:58,2.1,14606,United Kingdom\n"
    (tmp_path / "minute.csv").write_text(text, encoding="utf-8")
    (event,) = read_invoices(str(tmp_path / "minute.csv"))
    assert event.invoice_date == "2010-12-01T16:57:00"
    assert [item.invoice_date for item in event.lines] == [None, "2010-12-01T16:58:00"]


@pytest.mark.parametrize("content, message", [("", "empty"), ("a,b\n1,2\n", "missing column")])
def test_unreadable_sources_fail_clearly(tmp_path, content, message):
    (tmp_path / "x.csv").write_text(content, encoding="utf-8")
    with pytest.raises(SourceError, match=message):
        list(read_invoices(str(tmp_path / "x.csv")))


def test_missing_paths_fail_clearly(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        list(read_invoices(str(tmp_path / "nope.csv")))
    with pytest.raises(SourceError, match="matches no files"):
        list(read_invoices(str(tmp_path / "*.csv")))
    (tmp_path / "x.zip").write_bytes(b"not a zip")
    with pytest.raises(SourceError, match="not a readable zip"):
        list(read_invoices(str(tmp_path / "x.zip")))


@pytest.mark.parametrize(
    "text, iso",
    [("12/1/2010 8:26", "2010-12-01T08:26:00"), ("2010-12-01 08:26:00", "2010-12-01T08:26:00"),
     ("1/10/2011 10:32", "2011-01-10T10:32:00"), ("2/30/2011 10:32", None), ("13/1/2010 8:26", None), ("", None)],
)
def test_timestamps(text, iso):
    assert parse_timestamp(text) == iso


def test_raw_rows_from_json_accept_numbers():
    parsed = parse_row(raw_row(quantity=6, unit_price=Decimal("2.55"), customer_id=Decimal("17850.0")))
    assert parsed.quantity == 6 and parsed.unit_price == Decimal("2.55") and parsed.customer_id == "17850"
    problems = parse_row(raw_row(quantity=True, unit_price=None, country=""))
    assert {p.field for p in problems} == {"Quantity", "UnitPrice", "Country"}


def test_bundled_sample_reads_cleanly():
    grouper = InvoiceGrouper()
    events = list(read_invoices(str(SAMPLE), grouper))
    assert grouper.errors == []
    assert (len(events), sum(len(e.lines) for e in events)) == (418, 7419)
