"""Scheduled rules run locally (devstack/runtime/schedules.py): rates, cron, the event, retries."""
from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import pytest

from devstack.runtime.model import ScheduleSpec
from devstack.runtime.schedules import Cron, ScheduleRunner, UnsupportedSchedule, rate_seconds
from devstack.runtime.workers import InvokeResult, function_error

RULE_ARN = "arn:aws:events:eu-west-1:123456789012:rule/merge"
TARGET = "arn:aws:lambda:eu-west-1:123456789012:function:merge"


class Invoker:
    def __init__(self, failures: int = 0):
        self.payloads: list[dict] = []
        self.failures = failures
        self.called = threading.Event()

    def invoke(self, function, payload, *, request_id=None):
        assert function == TARGET
        self.payloads.append(json.loads(payload))
        self.called.set()
        if self.failures:
            self.failures -= 1
            return function_error("RuntimeError", "warehouse busy", "r")
        return InvokeResult("r", b'{"merged": true}')


def wait_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    raise AssertionError("condition not reached")


@pytest.mark.parametrize("expression, seconds", [("rate(1 minute)", 60), ("rate(5 minutes)", 300),
                                                 ("rate(2 hours)", 7200), ("rate(1 day)", 86400),
                                                 ("rate(10 seconds)", 10), ("cron(0 * * * ? *)", None)])
def test_rate_expressions(expression, seconds):
    assert rate_seconds(expression) == seconds


def test_cron_finds_the_next_matching_minute_in_utc():
    weekdays_9_to_5 = Cron.parse("cron(0/15 9-17 ? * MON-FRI *)")
    saturday = datetime(2026, 12, 5, 10, 1, tzinfo=UTC)
    assert weekdays_9_to_5.next_after(saturday) == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    assert Cron.parse("cron(30 2 1 * ? *)").next_after(saturday) == datetime(2027, 1, 1, 2, 30, tzinfo=UTC)
    with pytest.raises(UnsupportedSchedule):
        Cron.parse("cron(0 0 L * ? *)")


def test_a_rate_rule_runs_at_once_with_eventbridges_scheduled_event_then_on_demand():
    invoker = Invoker()
    runner = ScheduleRunner(ScheduleSpec("merge", RULE_ARN, "rate(1 hour)", targets=((TARGET, None),)), invoker)
    runner.start()
    try:
        wait_until(lambda: runner.last_completed_at is not None)
        [event] = invoker.payloads
        assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
        assert event["resources"] == [RULE_ARN] and event["detail"] == {} and event["account"] == "123456789012"
        assert runner.last_ok and runner.last_result == {"merged": True}
        first = runner.last_completed_started_at
        runner.run_now()
        wait_until(lambda: runner.runs == 2 and runner.last_completed_started_at > first)
        assert runner.next_run_at > time.time() + 3000  # the hourly schedule goes on
    finally:
        runner.stop()
        runner.join(5)


def test_a_failed_run_is_retried_twice_then_reported():
    invoker = Invoker(failures=5)
    runner = ScheduleRunner(ScheduleSpec("merge", RULE_ARN, "rate(1 hour)", targets=((TARGET, None),)), invoker,
                            retry_delay=0.01)
    runner.start()
    try:
        wait_until(lambda: runner.last_completed_at is not None)
        assert len(invoker.payloads) == 3 and runner.last_ok is False and "warehouse busy" in runner.last_error
        assert runner.status()["failures"] == 1
    finally:
        runner.stop()
        runner.join(5)


def test_a_target_input_replaces_the_event():
    invoker = Invoker()
    runner = ScheduleRunner(ScheduleSpec("merge", RULE_ARN, "rate(1 hour)", targets=((TARGET, '{"full": true}'),)),
                            invoker)
    runner.start()
    try:
        wait_until(lambda: runner.last_completed_at is not None)
        assert invoker.payloads == [{"full": True}]
    finally:
        runner.stop()
        runner.join(5)


def test_a_period_cap_runs_a_slow_rate_schedule_often_locally():
    runner = ScheduleRunner(ScheduleSpec("merge", RULE_ARN, "rate(5 minutes)", targets=((TARGET, None),)), Invoker(),
                            period_cap=5)
    assert runner._next(1000.0) == 1005.0
    assert ScheduleRunner(ScheduleSpec("m", RULE_ARN, "rate(5 minutes)"), Invoker())._next(1000.0) == 1300.0


class CountingClock:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return time.time()


def test_a_disabled_rule_sleeps_until_it_is_enabled():
    invoker, clock = Invoker(), CountingClock()
    spec = ScheduleSpec("merge", RULE_ARN, "rate(1 hour)", enabled=False, targets=((TARGET, None),))
    runner = ScheduleRunner(spec, invoker, clock=clock)
    runner.start()
    try:
        time.sleep(0.3)
        assert runner.runs == 0 and clock.calls < 10  # no busy loop on a run that is overdue but disabled
        runner.update(ScheduleSpec("merge", RULE_ARN, "rate(1 hour)", enabled=True, targets=((TARGET, None),)))
        wait_until(lambda: runner.runs == 1 and runner.last_ok)
    finally:
        runner.stop()
        runner.join(5)


def test_a_cron_token_that_is_not_a_number_or_name_is_reported_not_fatal():
    with pytest.raises(UnsupportedSchedule, match="FOO"):
        Cron.parse("cron(0 * ? * FOO *)")
    runner = ScheduleRunner(ScheduleSpec("merge", RULE_ARN, "cron(0 * ? * FOO *)", targets=((TARGET, None),)),
                            Invoker())
    runner.start()
    try:
        wait_until(lambda: runner.unsupported is not None)
        assert runner.is_alive() and "FOO" in runner.status()["unsupported"]
        runner.run_now()  # still runs on demand
        wait_until(lambda: runner.runs == 1)
    finally:
        runner.stop()
        runner.join(5)


def test_an_invoker_that_raises_is_a_failed_run_and_the_schedule_goes_on():
    class Raising(Invoker):
        def invoke(self, function, payload, *, request_id=None):
            super().invoke(function, payload, request_id=request_id)
            raise ConnectionError("worker gone")

    runner = ScheduleRunner(ScheduleSpec("merge", RULE_ARN, "rate(1 hour)", targets=((TARGET, None),)), Raising(),
                            retry_delay=0.01)
    runner.start()
    try:
        wait_until(lambda: runner.last_completed_at is not None)
        assert runner.last_ok is False and "worker gone" in runner.last_error and runner.is_alive()
        assert runner.next_run_at > time.time() + 3000
    finally:
        runner.stop()
        runner.join(5)


def test_a_run_cut_short_by_a_stop_is_not_reported_as_ok():
    invoker = Invoker(failures=5)
    runner = ScheduleRunner(ScheduleSpec("merge", RULE_ARN, "rate(1 hour)", targets=((TARGET, None),)), invoker,
                            retry_delay=30)
    runner.start()
    wait_until(lambda: invoker.called.is_set())
    runner.stop()
    runner.join(5)
    assert len(invoker.payloads) == 1 and runner.last_ok is False and "warehouse busy" in runner.last_error


def test_the_scheduled_event_time_has_second_precision():
    runner = ScheduleRunner(ScheduleSpec("merge", RULE_ARN, "rate(1 hour)"), Invoker())
    assert json.loads(runner.event(1764608586.789))["time"] == "2025-12-01T17:03:06Z"
