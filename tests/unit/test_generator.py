"""The synthetic data generator (generator/): reproducible by seed, shaped like the real
data, read back by the pipeline's own reader with no error and to the penny, in bounded
memory, from the command line and live to an HTTP API."""
from __future__ import annotations

import csv
import json
import re
import threading
import time
import tracemalloc
from collections import Counter, defaultdict
from datetime import date, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from devstack import cli
from generator.output import Written, write
from generator.params import MEASURED
from generator.shop import Options, Shop, is_open
from pipeline.events import NON_PRODUCT_STOCK_CODES
from pipeline.kaggle import InvoiceGrouper, read_invoices


def generate(out: Path, **options) -> Written:
    fmt = options.pop("fmt", "daily")
    one_file = options.pop("one_file", False)
    written = Written()
    for _ in write(Shop(Options(**options)).invoices(), str(out), fmt=fmt, one_file=one_file, written=written):
        pass
    return written


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def read_back(path: Path) -> tuple[list, InvoiceGrouper]:
    grouper = InvoiceGrouper()
    return list(read_invoices(str(path), grouper)), grouper


@pytest.fixture(scope="module")
def quarter():
    """Four months of one shop (about 9,000 invoices), the invoices as the core makes them."""
    return list(Shop(Options(seed=7, days=120, start=date(2011, 1, 4))).invoices())


# ---- reproducible ------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_ones(tmp_path):
    # GIVEN three runs: seed 1 twice, seed 2 once
    generate(tmp_path / "a", seed=1, days=10)
    generate(tmp_path / "b", seed=1, days=10)
    generate(tmp_path / "c", seed=2, days=10)
    # THEN the first two are identical byte for byte, and the third differs in every file
    a, b, c = files(tmp_path / "a"), files(tmp_path / "b"), files(tmp_path / "c")
    assert a == b and len(a) == 9  # 10 days from Wednesday 1 December 2010: Saturday the 4th closed
    assert a.keys() == c.keys() and all(a[name] != c[name] for name in a)


def test_a_longer_run_begins_with_the_shorter_one(tmp_path):
    # GIVEN 5 and 12 days of the same seed
    generate(tmp_path / "short", seed=3, days=5)
    generate(tmp_path / "long", seed=3, days=12)
    short, long = files(tmp_path / "short"), files(tmp_path / "long")
    # THEN the short run's files are the long run's first ones (nothing looks ahead)
    assert short == {name: long[name] for name in short} and len(long) > len(short)


# ---- read back by the pipeline's reader ----------------------------------------------------


@pytest.mark.parametrize(("fmt", "one_file"), [("daily", False), ("kaggle", False), ("kaggle", True), ("daily", True)])
def test_every_generated_file_reads_back_with_no_row_error_and_to_the_penny(tmp_path, fmt, one_file):
    # GIVEN a month in one format and layout
    written = generate(tmp_path, seed=1, days=30, fmt=fmt, one_file=one_file)
    # WHEN the pipeline's reader reads the directory
    events, grouper = read_back(tmp_path)
    # THEN no row is refused, every invoice and line is there, and each file's total
    # (quantity × price from the CSV, exact) is what the reader's events add up to
    assert grouper.errors == [] and grouper.rows_read == written.lines
    assert len(events) == written.invoices and sum(len(e.lines) for e in events) == written.lines
    encoding = "utf-8" if fmt == "daily" else "iso-8859-1"
    for path in sorted(tmp_path.glob("*.csv")):
        with open(path, encoding=encoding, newline="") as fh:
            from_csv = sum((int(r["Quantity"]) * Decimal(r["UnitPrice"]) for r in csv.DictReader(fh)), Decimal(0))
        from_reader = sum((e.total for e in read_back(path)[0]), Decimal(0))
        assert from_csv == from_reader
    assert sum((e.total for e in events), Decimal(0)) == Decimal(written.cents).scaleb(-2)


def test_both_formats_hold_the_same_invoices_and_the_events_sent_are_the_ones_read(tmp_path):
    # GIVEN one run written in each format, and the same run's events as --post sends them
    generate(tmp_path / "daily", seed=5, days=14)
    generate(tmp_path / "kaggle", seed=5, days=14, fmt="kaggle", one_file=True)
    sent = [invoice.to_event() for invoice in Shop(Options(seed=5, days=14)).invoices()]
    # THEN all three are the same events (the event id is a digest of the content)
    ids = [e.event_id for e in sent]
    assert [e.event_id for e in read_back(tmp_path / "daily")[0]] == ids
    assert [e.event_id for e in read_back(tmp_path / "kaggle")[0]] == ids


def test_the_formats_are_spelt_as_the_real_files_are(tmp_path):
    # GIVEN a month in each format
    generate(tmp_path / "daily", seed=1, days=30)
    generate(tmp_path / "kaggle", seed=1, days=30, fmt="kaggle", one_file=True)
    daily = b"".join(files(tmp_path / "daily").values())
    kaggle = (tmp_path / "kaggle" / "data.csv").read_bytes()
    header = b"InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    # THEN the daily files: UTF-8, ISO timestamps, 17850.0; Kaggle's: Latin-1, 12/1/2010 8:26, 17850
    assert daily.startswith(header) and kaggle.startswith(header) and b"\r" not in daily + kaggle
    assert re.search(rb"\n\d{6},[^\n]*,2010-12-01 \d\d:\d\d:00,\d+\.\d{1,2},1\d{4}\.0,United Kingdom\n", daily)
    assert re.search(rb"\n\d{6},[^\n]*,12/1/2010 \d{1,2}:\d\d,\d+\.\d{1,2},1\d{4},United Kingdom\n", kaggle)
    assert "£".encode() in daily and b"\xa3" in kaggle and "£".encode() not in kaggle  # the gift vouchers
    # quoted fields as the real ones: a comma or a quote inside, doubled quotes
    assert re.search(rb',"[^"\n]*,[^"\n]*",', daily) and re.search(rb',"[^"\n]*""[^\n]*",', daily)


# ---- the shape --------------------------------------------------------------------------


def test_the_calendar_closes_exactly_the_days_the_real_shop_was_closed():
    first, last = (date.fromisoformat(MEASURED["source"][k]) for k in ("first_day", "last_day"))
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    closed = [d.isoformat() for d in days if not is_open(d) and d.weekday() != 5]
    assert closed == MEASURED["calendar"]["closed_weekdays"]
    assert not any(is_open(d) for d in days if d.weekday() == 5)
    assert sum(is_open(d) for d in days) == MEASURED["source"]["days"] == 305


def test_the_weekly_and_daily_rhythm_is_the_real_one(quarter):
    per_weekday = Counter(i.day.weekday() for i in quarter)
    open_days = Counter(d.weekday() for d in {i.day for i in quarter})
    factor = MEASURED["calendar"]["weekday_factor"]
    # no invoice on a Saturday; Sundays about half a weekday, Thursdays the busiest
    assert per_weekday[5] == 0
    mean = {w: per_weekday[w] / open_days[w] for w in open_days}
    weekdays = sum(mean[w] for w in range(5)) / 5
    expected = sum(factor[w] for w in range(5)) / 5
    assert mean[6] / weekdays == pytest.approx(factor[6] / expected, rel=0.2)
    assert mean[3] == max(mean.values())
    # the shop's hours: 6 to 20 h, Sundays 9 to 16 h
    hours = {i.minute // 60 for i in quarter}
    assert min(hours) >= 6 and max(hours) <= 20
    assert {i.minute // 60 for i in quarter if i.day.weekday() == 6} <= set(range(9, 17))
    # and in time order, with increasing, unique six-digit numbers
    numbers = [int(i.number.lstrip("CA")) for i in quarter]
    assert numbers == sorted(set(numbers)) and all(len(i.number.lstrip("CA")) == 6 for i in quarter)
    assert [(i.day, i.minute) for i in quarter] == sorted((i.day, i.minute) for i in quarter)


def test_cancellations_missing_customers_and_lines_per_invoice_are_at_the_measured_rates(quarter):
    kinds, source = MEASURED["kinds"], MEASURED["source"]
    lines = sum(len(i.lines) for i in quarter)
    cancelled = sum(i.number.startswith("C") for i in quarter) / len(quarter)
    no_customer = sum(len(i.lines) for i in quarter if i.customer is None) / lines
    non_product = sum(line.item.code in NON_PRODUCT_STOCK_CODES for i in quarter for line in i.lines) / lines
    assert cancelled == pytest.approx((kinds["cancel"] + kinds["cancel_anonymous"]) / source["invoices"], abs=0.015)
    assert no_customer == pytest.approx(source["lines_without_customer"] / source["lines"], abs=0.035)
    assert lines / len(quarter) == pytest.approx(source["lines"] / source["invoices"], rel=0.1)  # 20.9
    assert non_product == pytest.approx(0.0054, rel=0.35)  # 2,912 of the real 541,909 lines
    # the heavy tail: most orders are small, a few have hundreds of lines
    sizes = sorted(len(i.lines) for i in quarter if i.kind == "sale")
    assert sizes[len(sizes) // 2] == pytest.approx(15, abs=3) and sizes[-1] > 200
    # cancellations take quantities back, mostly of a product that customer ordered before
    bought = defaultdict(set)
    known = total = 0
    for invoice in quarter:
        if invoice.kind == "sale":
            bought[invoice.customer].update(line.item.code for line in invoice.lines)
        elif invoice.kind == "cancel":
            assert all(line.quantity < 0 for line in invoice.lines)
            products = [line for line in invoice.lines if line.item.code not in NON_PRODUCT_STOCK_CODES]
            known += sum(line.item.code in bought[invoice.customer] for line in products)
            total += len(products)
    assert known / total == pytest.approx(MEASURED["cancel"]["known_product"], abs=0.08)


def test_products_and_customers_are_stable(quarter):
    described, priced, countries = defaultdict(set), defaultdict(set), defaultdict(set)
    for invoice in quarter:
        if invoice.customer is not None:
            countries[invoice.customer].add(invoice.country)
        for line in invoice.lines:
            if invoice.kind != "note" and line.item.code not in NON_PRODUCT_STOCK_CODES:
                described[line.item.code].add(line.item.description)
                priced[line.item.code].add(line.price.cents)
    # one description per stock code, at most four prices per product (list, bulk, higher, web shop)
    assert all(len(d) == 1 for d in described.values()) and max(len(p) for p in priced.values()) <= 4
    # stock codes shaped like the real ones; descriptions in capitals
    shaped = [c for c in described if re.fullmatch(r"\d{5}[A-E]?", c)]
    assert len(shaped) / len(described) > 0.99
    assert all(d.upper() == d for c in shaped for d in described[c])
    # customers: five digits in the real range, one country each, the UK most of them
    assert all(12346 <= c <= 18287 for c in countries) and all(len(v) == 1 for v in countries.values())
    uk = sum(v == {"United Kingdom"} for v in countries.values()) / len(countries)
    assert uk == pytest.approx(0.9, abs=0.05)


def test_numbers_go_on_to_seven_digits_after_999999():
    shop = Shop(Options(seed=1, days=2))
    shop._number = 999_990
    numbers = [i.number.lstrip("CA") for i in shop.invoices()]
    assert numbers[0] == "999990" and len(numbers[-1]) == 7 and int(numbers[-1]) > 1_000_000


# ---- bounded memory, speed --------------------------------------------------------------


def _peak(days: int, out: Path) -> int:
    tracemalloc.start()
    try:
        generate(out, seed=1, days=days, scale=20)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_days_or_scale(tmp_path):
    # GIVEN twenty times the real volume (about 2,000 invoices a day), for 2 days and for 6
    short, long = _peak(2, tmp_path / "short"), _peak(6, tmp_path / "long")
    # THEN the peak is the catalogue, the recent orders and one invoice: the same for both, and small
    assert long < short * 1.3 and long < 12_000_000, (short, long)


# ---- the command line -------------------------------------------------------------------


def test_shopstream_generate_twice_gives_identical_files_in_seconds(tmp_path, capsys):
    # GIVEN `shopstream generate --seed 1 --days 30` run twice, into two directories
    started = time.monotonic()
    for out in ("a", "b"):
        assert cli.main(["generate", "--seed", "1", "--days", "30", "--out", str(tmp_path / out), "--quiet"]) == 0
    elapsed = time.monotonic() - started
    # THEN the files are identical, twenty of them (December 2010 to the 23rd, Saturdays closed), made fast
    a, b = files(tmp_path / "a"), files(tmp_path / "b")
    assert a == b and len(a) == 20 and min(a) == "2010-12-01.csv" and max(a) == "2010-12-23.csv"
    assert elapsed < 10, elapsed
    out = capsys.readouterr().out
    assert "seed 1, 30 days from 2010-12-01 (20 open)" in out and "20 files (daily format" in out


def test_without_out_the_files_go_to_generated_here(tmp_path, monkeypatch):
    # GIVEN the command as the acceptance names it, run twice in one directory
    monkeypatch.chdir(tmp_path)
    assert cli.main(["generate", "--seed", "1", "--days", "30", "--quiet"]) == 0
    first = files(tmp_path / "generated")
    assert cli.main(["generate", "--seed", "1", "--days", "30", "--quiet"]) == 0
    # THEN ./generated holds the same twenty files, byte for byte
    assert files(tmp_path / "generated") == first and len(first) == 20


def test_pacing_without_post_is_refused(capsys):
    assert cli.main(["generate", "--days", "1", "--rate", "5"]) == 2
    assert "add --post" in capsys.readouterr().err


def test_generate_post_without_a_stack_says_so(tmp_path, capsys):
    assert cli.main(["generate", "--days", "1", "--post", "--state-dir", str(tmp_path)]) == 2
    assert "not up" in capsys.readouterr().err


class RecordingApi(BaseHTTPRequestHandler):
    """POST /events: accepts everything and records the events (and the token)."""

    received: list = []
    tokens: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        RecordingApi.received.extend(body)
        RecordingApi.tokens.append(self.headers.get("Authorization"))
        payload = json.dumps({"accepted": {"count": len(body)}}).encode()
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_post_sends_the_invoices_live_and_they_are_the_files(tmp_path, capsys):
    # GIVEN an HTTP API that accepts everything
    RecordingApi.received, RecordingApi.tokens = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordingApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # WHEN three days are generated, written and posted at once
        code = cli.main(["generate", "--seed", "4", "--days", "3", "--post", "--endpoint",
                         f"http://127.0.0.1:{server.server_address[1]}", "--token", "t0k3n",
                         "--out", str(tmp_path), "--report", str(tmp_path / "report.json"), "--quiet"])
    finally:
        server.shutdown()
    # THEN every invoice arrived once, as the files hold it, with the token
    assert code == 0
    events, grouper = read_back(tmp_path)
    assert grouper.errors == [] and len(events) > 200
    assert Counter(e["event_id"] for e in RecordingApi.received) == Counter(e.event_id for e in events)  # each once
    assert set(RecordingApi.tokens) == {"Bearer t0k3n"}
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["delivery"]["ok"] and report["delivery"]["events_sent"] == report["invoices"] == len(events)
    assert Decimal(report["delivery"]["sent_total"]) == Decimal(report["total"])
    assert "everything read was delivered" in capsys.readouterr().out


# ---- the parameters are the real data's --------------------------------------------------


@pytest.mark.full_data
def test_the_parameters_are_what_measuring_the_real_data_gives(shared_data):
    from generator.measure import measure

    assert measure(str(shared_data / "by-day")) == MEASURED


def test_the_measure_reads_the_bundled_sample():
    # (the sample is three days: a different shape, the same structure)
    from generator.measure import measure
    from tests.conftest import SAMPLE

    measured = measure(str(SAMPLE))
    assert measured.keys() == MEASURED.keys() and measured["source"]["invoices"] == 418
