"""A small client of the runtime's admin endpoint (standard library only).

    from devstack.runtime import client
    client.status("http://127.0.0.1:4599")
    t = time.time(); replay(...)            # write to the stream
    client.wait_until_drained("http://127.0.0.1:4599", since=t, timeout=120)

Drained means: the runtime completed a discovery that started after ``since`` (so every
consumer that existed then is known), and every shard of every stream consumer (event
source mappings, Firehose deliveries, whatever their kind) either is finished (closed
and read to its end) or has nothing buffered or in flight and a
``last_empty_poll_started_at`` later than ``since`` — a GetRecords that began after the
writer finished came back empty, so everything written before ``since`` was handled.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any


class RuntimeUnavailable(ConnectionError):
    """The admin endpoint did not answer."""


class NotDrained(TimeoutError):
    """Raised by :func:`wait_until_drained` on timeout; ``.lagging`` lists the shards behind."""

    def __init__(self, message: str, lagging: list[dict], status: dict | None) -> None:
        super().__init__(message)
        self.lagging = lagging
        self.status = status


def _request(admin_url: str, path: str, method: str = "GET", timeout: float = 5.0) -> Any:
    request = urllib.request.Request(admin_url.rstrip("/") + path, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return json.loads(body)
        except ValueError:
            raise RuntimeUnavailable(f"{admin_url}{path}: HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise RuntimeUnavailable(f"the local runtime does not answer at {admin_url} ({exc})") from exc


def health(admin_url: str, timeout: float = 2.0) -> bool:
    try:
        return _request(admin_url, "/health", timeout=timeout).get("status") == "ok"
    except RuntimeUnavailable:
        return False


def status(admin_url: str, timeout: float = 5.0) -> dict:
    """The runtime's status (see LocalRuntime.status for the shape)."""
    return _request(admin_url, "/status", timeout=timeout)


def discover(admin_url: str, timeout: float = 30.0) -> dict:
    """Ask the runtime to read the emulator now; returns the status afterwards."""
    return _request(admin_url, "/discover", method="POST", timeout=timeout)


def lagging_shards(state: dict, since: float) -> list[dict]:
    """The shards (and consumers without shards) that have not drained past ``since``."""
    behind: list[dict] = []
    for consumer in state.get("consumers", []):
        who = {"kind": consumer.get("kind"), "consumer": consumer.get("id"), "name": consumer.get("name")}
        shards = consumer.get("shards") or []
        if not shards:
            behind.append({**who, "shard_id": None, "reason": "no shards polled yet"})
        for shard in shards:
            if shard.get("finished"):
                continue
            last = shard.get("last_empty_poll_started_at")
            reasons = []
            if shard.get("in_flight"):
                reasons.append("batch in flight")
            if shard.get("pending_records"):
                reasons.append(f"{shard['pending_records']} records buffered")
            if last is None:
                reasons.append("no empty poll yet")
            elif last <= since:
                reasons.append(f"last empty poll {since - last:.2f}s before the writes finished")
            if reasons:
                behind.append({**who, "shard_id": shard.get("shard_id"), "checkpoint": shard.get("checkpoint"),
                               "last_error": shard.get("last_error"), "reason": ", ".join(reasons)})
    return behind


def describe_lagging(lagging: list[dict]) -> str:
    lines = []
    for item in lagging:
        line = f"{item['kind']} {item['name']} ({item['consumer']}) shard={item['shard_id']}: {item['reason']}"
        if item.get("checkpoint") is not None:
            line += f" (checkpoint {item['checkpoint']})"
        if item.get("last_error"):
            line += f" last error: {item['last_error']}"
        lines.append(line)
    return "\n  ".join(lines)


def wait_until_drained(admin_url: str, since: float, timeout: float = 60.0,
                       progress: Callable[[dict, list[dict]], None] | None = None,
                       poll_interval: float = 0.1) -> dict:
    """Wait until every consumer has handled what was written before ``since`` (epoch
    seconds, ``time.time()`` on this machine); returns the final status.

    ``progress(status, lagging)`` is called after each poll (e.g. to drive a progress
    bar). Raises :class:`NotDrained` on timeout, naming the shards behind, and
    :class:`RuntimeUnavailable` if the runtime stops answering.
    """
    deadline = time.monotonic() + timeout
    try:
        state = discover(admin_url)
    except RuntimeUnavailable:
        state = status(admin_url)
    while True:
        discovery = state.get("discovery") or {}
        completed = discovery.get("last_completed_started_at")
        lagging = lagging_shards(state, since)
        if completed is None or completed <= since:
            lagging = [{"kind": "runtime", "consumer": None, "name": "discovery", "shard_id": None,
                        "reason": f"no discovery since the writes finished (last error: {discovery.get('last_error')})"}
                       ] + lagging
        if progress is not None:
            progress(state, lagging)
        if not lagging:
            return state
        if time.monotonic() >= deadline:
            raise NotDrained(f"the local runtime has not drained after {timeout:.0f}s; "
                             f"{len(lagging)} behind:\n  {describe_lagging(lagging)}", lagging, state)
        time.sleep(poll_interval)
        state = status(admin_url)


def run_schedule(admin_url: str, rule: str, timeout: float = 5.0) -> None:
    """Ask the runtime to run a scheduled rule now (raises RuntimeUnavailable if unknown)."""
    answer = _request(admin_url, f"/schedules/{rule}/run", method="POST", timeout=timeout)
    if answer.get("run") != rule:
        raise RuntimeUnavailable(answer.get("message") or f"the runtime did not run {rule}")


class ScheduleFailed(RuntimeError):
    """The scheduled run completed with an error (its message is the target's)."""


def wait_for_schedule(admin_url: str, rule: str, since: float, timeout: float = 120.0,
                      poll_interval: float = 0.1) -> dict:
    """Wait until a run of ``rule`` that started after ``since`` has completed; returns its
    status. Raises :class:`ScheduleFailed` if that run failed, :class:`NotDrained` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        state = status(admin_url)
        schedule = next((s for s in state.get("schedules", []) if s.get("name") == rule), None)
        if schedule is not None and (schedule.get("last_completed_started_at") or 0) > since:
            if not schedule.get("last_ok"):
                raise ScheduleFailed(f"the scheduled run of {rule} failed: {schedule.get('last_error')}")
            return schedule
        if time.monotonic() >= deadline:
            where = "not found" if schedule is None else f"last run started at {schedule.get('last_started_at')}"
            raise NotDrained(f"no run of {rule} completed within {timeout:.0f}s ({where})", [], state)
        time.sleep(poll_interval)


def wait_until_each_drained(admin_url: str, since: float, timeout: float = 60.0,
                            clock: Callable[[], float] = time.time) -> tuple[dict, dict[str, float]]:
    """:func:`wait_until_drained`, also noting when each stream consumer (by name) had
    caught up: the status and ``{name: wall-clock time it was first seen drained}``."""
    done: dict[str, float] = {}

    def note(state: dict, lagging: list[dict]) -> None:
        behind = {item.get("name") for item in lagging}
        now = clock()
        for consumer in state.get("consumers", []):
            if consumer.get("name") not in behind:
                done.setdefault(consumer.get("name"), now)

    return wait_until_drained(admin_url, since=since, timeout=timeout, progress=note, poll_interval=0.05), done
