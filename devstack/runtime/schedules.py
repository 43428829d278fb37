"""EventBridge scheduled rules, run locally against their Lambda targets.

moto stores rules and targets but never fires them. For every enabled rule with a
ScheduleExpression the runtime keeps a thread that invokes each Lambda target on the
schedule, with EventBridge's scheduled event (``"detail-type": "Scheduled Event"``,
``"source": "aws.events"``, ``resources`` = the rule's ARN, ``detail`` = {}) or the
target's constant Input:

* ``rate(N minute|minutes|hour|hours|day|days)`` — every N units, the first run at once
  (EventBridge's first run comes within one period of creation; locally at once, so a
  fresh stack is ready without waiting a period). ``rate(N second|seconds)`` is accepted
  locally only (EventBridge's minimum is a minute), for the local stack's short loop;
* ``cron(minutes hours day-of-month month day-of-week year)`` in UTC, with ``*``, ``?``,
  lists, ranges and steps (``L``, ``W`` and ``#`` are not run locally: a warning says so).

With a ``period_cap`` (``shopstream up`` sets 5 s) a rate schedule runs at least that
often: EventBridge's minimum period is a minute, which is long on a laptop. Cron
schedules keep their times.

Runs of one rule never overlap (a run that outlasts its period delays the next, as a
local stand-in for the reserved concurrency one would set on AWS). A failed run is
retried twice, as Lambda retries an asynchronous invocation, then logged. ``run_now``
triggers a run at once (``POST /schedules/<name>/run`` on the admin API), and the
status tells when the last run that completed started, so a client can wait for a run
that began after its data was in place (:func:`devstack.runtime.client.wait_for_schedule`).
"""
from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from devstack.runtime.esm import FunctionInvoker
from devstack.runtime.model import ScheduleSpec, arn_account

log = logging.getLogger("devstack.runtime.schedules")

ASYNC_RETRIES = 2
_RATE = re.compile(r"rate\(\s*(\d+)\s+(second|seconds|minute|minutes|hour|hours|day|days)\s*\)", re.I)
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


class UnsupportedSchedule(ValueError):
    pass


def rate_seconds(expression: str) -> float | None:
    match = _RATE.fullmatch(expression.strip())
    if match is None:
        return None
    count, unit = int(match.group(1)), match.group(2).lower().rstrip("s")
    if count < 1:
        raise UnsupportedSchedule(f"{expression}: the rate must be at least 1")
    return float(count * _UNIT_SECONDS[unit])


def _field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int]:
    try:
        return _parse_field(text, low, high, names)
    except ValueError as exc:  # a token that is neither a number nor a name
        raise UnsupportedSchedule(f"cron field {text!r}: {exc}") from exc


def _parse_field(text: str, low: int, high: int, names: dict[str, int] | None) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        if part in ("*", "?"):
            values.update(range(low, high + 1))
            continue
        if any(c in part for c in "LW#"):
            raise UnsupportedSchedule(f"cron field {text!r}: L, W and # are not run locally")
        base, _, step = part.partition("/")
        start, _, end = base.partition("-")

        def value(token: str) -> int:
            token = token.strip()
            if names and token.upper() in names:
                return names[token.upper()]
            return int(token)

        first = low if start in ("*", "") else value(start)
        last = value(end) if end else (high if step or start == "*" else first)
        values.update(range(first, last + 1, int(step) if step else 1))
    if not values or min(values) < low or max(values) > high:
        raise UnsupportedSchedule(f"cron field {text!r} is outside {low}-{high}")
    return values


_MONTHS = {m: i for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV",
                                       "DEC"), start=1)}
_DAYS = {d: i for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)}


@dataclass(frozen=True)
class Cron:
    minutes: set[int]
    hours: set[int]
    days: set[int] | None    # None: "?" (the other day field decides)
    months: set[int]
    weekdays: set[int] | None
    years: set[int]

    @classmethod
    def parse(cls, expression: str) -> Cron:
        match = re.fullmatch(r"cron\((.*)\)", expression.strip(), re.I)
        parts = match.group(1).split() if match else []
        if len(parts) != 6:
            raise UnsupportedSchedule(f"{expression}: a cron expression has 6 fields")
        minute, hour, day, month, weekday, year = parts
        return cls(_field(minute, 0, 59), _field(hour, 0, 23), None if day == "?" else _field(day, 1, 31),
                   _field(month, 1, 12, _MONTHS), None if weekday == "?" else _field(weekday, 1, 7, _DAYS),
                   _field(year, 1970, 2199))

    def matches(self, moment: datetime) -> bool:
        weekday = (moment.isoweekday() % 7) + 1  # EventBridge: 1 = Sunday
        day_ok = (self.days is None or moment.day in self.days) and (self.weekdays is None or weekday in self.weekdays)
        return (moment.minute in self.minutes and moment.hour in self.hours and moment.month in self.months
                and moment.year in self.years and day_ok)

    def next_after(self, moment: datetime) -> datetime | None:
        candidate = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        for _ in range(366 * 24 * 60):  # a year of minutes at most
            if self.matches(candidate):
                return candidate
            candidate += timedelta(minutes=1)
        return None


class ScheduleRunner(threading.Thread):
    """One rule: invokes its targets on the schedule until stopped."""

    def __init__(self, spec: ScheduleSpec, invoker: FunctionInvoker, *, retry_delay: float = 1.0,
                 period_cap: float | None = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__(name=f"schedule-{spec.name}", daemon=True)
        self.spec = spec
        self.invoker = invoker
        self.retry_delay = retry_delay
        self.period_cap = period_cap
        self.clock = clock
        self._halt = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self.runs = 0
        self.failures = 0
        self.last_started_at: float | None = None
        self.last_completed_at: float | None = None
        self.last_completed_started_at: float | None = None
        self.last_ok: bool | None = None
        self.last_error: str | None = None
        self.last_result: object = None
        self.next_run_at: float | None = None
        self.running = False
        self.unsupported: str | None = None
        self._requested = False

    def update(self, spec: ScheduleSpec) -> None:
        changed = spec.expression != self.spec.expression
        self.spec = spec
        if changed:
            self._plan_first()
        self._wake.set()

    def stop(self) -> None:
        self._halt.set()
        self._wake.set()

    def run_now(self) -> None:
        """Run at once (after the run in progress, if any); the schedule goes on as before."""
        self._requested = True
        self._wake.set()

    def _next(self, after: float) -> float | None:
        rate = rate_seconds(self.spec.expression)
        if rate is not None:
            return after + (min(rate, self.period_cap) if self.period_cap else rate)
        following = Cron.parse(self.spec.expression).next_after(datetime.fromtimestamp(after, tz=UTC))
        return following.timestamp() if following else None

    def _plan_first(self) -> None:
        """A rate runs at once, a cron at its next minute; an expression not run locally is
        reported in the status (and only ``run_now`` runs the targets)."""
        try:
            rate = rate_seconds(self.spec.expression)
            self.next_run_at = self.clock() if rate is not None else self._next(self.clock())
            self.unsupported = None
        except UnsupportedSchedule as exc:
            self.next_run_at, self.unsupported = None, str(exc)
            log.warning("schedule not run locally rule=%s: %s", self.spec.name, exc)

    def run(self) -> None:
        self._plan_first()
        while not self._halt.is_set():
            # a disabled rule sleeps until it is updated or asked to run
            due = self.next_run_at if self.spec.enabled else None
            self._wake.wait(None if due is None else max(0.0, due - self.clock()))
            self._wake.clear()
            if self._halt.is_set():
                return
            scheduled = self.next_run_at is not None and self.clock() >= self.next_run_at and self.spec.enabled
            if not (scheduled or self._requested):
                continue
            self._requested = False
            started = self.clock()
            self._run_targets(started)
            if self.unsupported is None:
                try:
                    following = self._next(started)
                except UnsupportedSchedule as exc:
                    self.unsupported, following = str(exc), None
                # a run that outlasted its period: the next one starts now
                self.next_run_at = None if following is None else max(following, self.clock())

    def event(self, now: float) -> bytes:
        return json.dumps({
            "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
            "account": arn_account(self.spec.arn), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "region": self.spec.region, "resources": [self.spec.arn], "detail": {},
        }).encode()

    def _run_targets(self, started: float) -> None:
        with self._lock:
            self.running = True
            self.runs += 1
            self.last_started_at = started
        ok, error, result = True, None, None
        for function_arn, constant_input in self.spec.targets:
            payload = constant_input.encode() if constant_input else self.event(started)
            for attempt in range(ASYNC_RETRIES + 1):
                try:
                    outcome = self.invoker.invoke(function_arn, payload)
                    if outcome.ok:
                        result = outcome.json()
                        break
                    error = f"{outcome.error_type or outcome.service_error}: {outcome.error_message}"
                except Exception as exc:  # the invoker itself, or an answer that is not JSON
                    error = f"{type(exc).__name__}: {exc}"
                log.warning("scheduled run failed rule=%s target=%s attempt=%d: %s", self.spec.name, function_arn,
                            attempt + 1, error)
                if attempt == ASYNC_RETRIES or self._halt.wait(self.retry_delay * (attempt + 1)):
                    ok = False  # retries exhausted, or the runtime stopped before the next one
                    break
        with self._lock:
            self.running = False
            self.last_ok = ok
            self.last_error = None if ok else error
            self.last_result = result
            self.last_completed_at = self.clock()
            self.last_completed_started_at = started
            if not ok:
                self.failures += 1
        log.info("scheduled run rule=%s ok=%s took=%.2fs", self.spec.name, ok, self.clock() - started)

    def status(self) -> dict:
        return {
            "kind": "schedule", "name": self.spec.name, "arn": self.spec.arn, "expression": self.spec.expression,
            "enabled": self.spec.enabled, "targets": [arn for arn, _ in self.spec.targets], "runs": self.runs,
            "failures": self.failures, "running": self.running, "last_started_at": self.last_started_at,
            "last_completed_at": self.last_completed_at, "last_completed_started_at": self.last_completed_started_at,
            "last_ok": self.last_ok, "last_error": self.last_error, "last_result": self.last_result,
            "next_run_at": self.next_run_at, "unsupported": self.unsupported, "period_cap": self.period_cap,
        }
