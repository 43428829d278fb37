"""Replay pacing, batching and delivery (scripts/replay_kaggle.py)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.kaggle import read_invoices
from scripts.replay_kaggle import HttpSender, ReplayStats, batches, main, replay, schedule
from tests.conftest import SAMPLE
from tests.factories import event


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def test_speedup_keeps_the_real_gaps_between_invoices():
    clock = FakeClock()
    events = [event("1", invoice_date="2010-12-01T08:00:00"), event("2", invoice_date="2010-12-01T09:00:00"),
              event("3", invoice_date="2010-12-01T09:30:00")]
    due = [round(d - 100.0, 6) for d, _ in schedule(events, rate=None, speedup=3600, clock=clock)]
    assert due == [0.0, 1.0, 1.5]  # an hour of shop time per second


def test_rate_spaces_events_evenly():
    clock = FakeClock()
    due = [round(d - 100.0, 6) for d, _ in schedule([event(str(i)) for i in range(4)], rate=2, speedup=None, clock=clock)]
    assert due == [0.0, 0.5, 1.0, 1.5]


def test_batches_fill_by_count_and_bytes_and_flush_before_waiting():
    clock = FakeClock()
    evs = [event(str(i)) for i in range(7)]
    at_once = [(100.0, e) for e in evs]
    assert [len(b) for b in batches(at_once, max_events=3, max_bytes=10**6, clock=clock, sleep=clock.sleep)] == [3, 3, 1]
    one = len(evs[0].to_json()) + 1
    assert [len(b) for b in batches(at_once, max_events=100, max_bytes=2 + one * 2, clock=clock, sleep=clock.sleep)] == [2, 2, 2, 1]
    # a paced stream: the partial batch leaves before the replay sleeps for the next event
    paced = [(100.0, evs[0]), (100.0, evs[1]), (105.0, evs[2])]
    sent = []
    for batch in batches(paced, max_events=100, max_bytes=10**6, clock=clock, sleep=clock.sleep):
        sent.append(([e.invoice_no for e, _ in batch], clock.now))
    assert sent == [(["0", "1"], 100.0), (["2"], 105.0)]


class ScriptedApi(BaseHTTPRequestHandler):
    """Answers POST /events from a script of (status, body-builder) and records bodies."""

    script: list = []
    received: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ScriptedApi.received.append(body)
        status, make = ScriptedApi.script.pop(0) if ScriptedApi.script else (202, lambda b: {"accepted": {}})
        payload = json.dumps(make(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def api():
    ScriptedApi.script, ScriptedApi.received = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), ScriptedApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_transient_failures_are_retried_and_everything_is_delivered(api, monkeypatch):
    monkeypatch.setattr("scripts.replay_kaggle.time.sleep", lambda s: None)
    ScriptedApi.script = [(503, lambda b: {"message": "busy"})]
    stats = replay(str(SAMPLE), endpoint=api, limit=30, batch_events=10, concurrency=1, progress=False)
    assert stats.ok and stats.events_sent == 30 and stats.retries == 1
    assert [len(b) for b in ScriptedApi.received] == [10, 10, 10, 10]
    assert ScriptedApi.received[0] == ScriptedApi.received[1]  # the failed batch, sent again unchanged
    assert stats.sent_total == stats.source_total


class RetryClock:
    def __init__(self):
        self.now, self.slept = 0.0, []

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def _sender(api, clock, retry_for=300.0):
    stats = ReplayStats(source="s", target=api)
    return HttpSender(api, stats, threading.Lock(), retry_for=retry_for, sleep=clock.sleep, clock=lambda: clock.now), stats


def _batch(n=3):
    events = list(read_invoices(str(SAMPLE)))[:n]
    return [(e, e.to_json()) for e in events]


def test_a_runtime_restarting_for_a_minute_loses_nothing(api):
    # 503 with Retry-After (the gateway before discovery) for longer than the old six attempts
    ScriptedApi.script = [(503, lambda b: {"message": "not discovered yet"})] * 12
    clock = RetryClock()
    sender, stats = _sender(api, clock)
    sender.send(_batch())
    assert stats.events_sent == 3 and stats.failed_events == 0 and stats.retries == 12
    assert all(s <= 5.0 for s in clock.slept)


def test_no_connection_is_retried_too(api):
    clock = RetryClock()
    sender, stats = _sender("http://127.0.0.1:9", clock, retry_for=30.0)  # nothing listens on port 9
    sender.send(_batch())
    assert stats.events_sent == 0 and stats.failed_events == 3
    assert stats.retries >= 5 and 30.0 <= clock.now <= 40.0
    assert any("after retrying for" in p and "no connection" in p for p in stats.first_problems)


def test_a_404_is_final_at_once(api):
    ScriptedApi.script = [(404, lambda b: {"message": "Not Found"})]
    clock = RetryClock()
    sender, stats = _sender(api, clock)
    sender.send(_batch())
    assert stats.failed_events == 3 and stats.retries == 0 and clock.slept == []


def test_rejected_items_are_counted_named_and_fail_the_exit_status(api, tmp_path):
    ScriptedApi.script = [(207, lambda b: {"accepted": {"indexes": list(range(1, len(b)))}, "rejected_total": 1,
                                           "rejected": [{"index": 0, "problems": [{"field": "country", "reason": "is required"}]}]})]
    report = tmp_path / "report.json"
    code = main([str(SAMPLE), "--endpoint", api, "--limit", "5", "--quiet", "--report", str(report)])
    summary = json.loads(report.read_text())
    assert code == 1
    assert summary["rejected_items"] == 1 and summary["events_sent"] == 4
    assert "country: is required" in summary["first_problems"][0]


def test_a_request_refused_whole_counts_every_event_as_rejected(api, tmp_path):
    # a 400 for the body as a whole lists no items: all of them are rejected, none is lost from the count
    ScriptedApi.script = [(400, lambda b: {"message": "the request body is not usable",
                                           "problems": [{"field": "body", "reason": "is nested too deeply"}]})]
    report = tmp_path / "report.json"
    code = main([str(SAMPLE), "--endpoint", api, "--limit", "5", "--batch-events", "5", "--quiet", "--report", str(report)])
    summary = json.loads(report.read_text())
    assert code == 1
    assert summary["rejected_items"] == 5 and summary["events_sent"] == 0
    assert any("is nested too deeply" in p for p in summary["first_problems"])


def test_a_bad_source_path_is_a_clear_usage_error(capsys):
    assert main(["/nonexistent/data.zip", "--quiet"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_stats_report_rates():
    stats = ReplayStats(events_sent=10, lines_sent=100, elapsed_s=2.0)
    assert stats.to_dict()["lines_per_s"] == 50.0 and stats.to_dict()["ok"] is True
