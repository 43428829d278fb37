"""Precedence: while the operational consumer is behind, the others wait (bounded), so a
bulk load reaches the sink the query API reads first; nothing else changes."""
from __future__ import annotations

import threading
import time
from collections import deque
from types import SimpleNamespace

from devstack.runtime.shards import IDLE, INVOKED, PollerSettings, Precedence, ShardPoller, ShardStats
from tests.fixtures.aws import wait_for

FAST = PollerSettings(idle_delay=0.01, error_base_delay=0.01, error_max_delay=0.01)


class ScriptedProcessor:
    """A shard processor whose steps are scripted: each is (outcome, millis behind, buffered)."""

    def __init__(self, consumer: str, script=(), *, fail: bool = False, wait_for_script: bool = False):
        self.tail = SimpleNamespace(consumer_id=consumer, shard_id="shard-0", stats=ShardStats("shard-0"),
                                    buffer=deque(), context=consumer)
        self.stop_event = threading.Event()
        self.script = deque(script)
        self.steps = 0
        self.fail = fail
        self.wait_for_script = wait_for_script  # once the script is done, the next step waits for more
        self.more = threading.Condition()

    def add(self, *steps):
        with self.more:
            self.script.extend(steps)
            self.more.notify_all()

    def step(self):
        self.steps += 1
        if self.fail:
            raise RuntimeError("the table is gone")
        with self.more:
            while self.wait_for_script and not self.script and not self.stop_event.is_set():
                self.more.wait(0.05)
            outcome, behind, buffered = self.script.popleft() if self.script else (IDLE, 0, 0)
        self.tail.stats.millis_behind_latest = behind
        self.tail.buffer = deque(range(buffered))
        return outcome

    def wait_hint(self):
        return 0.01


def _start(processor, precedence, first):
    poller = ShardPoller(processor, FAST, name=processor.tail.consumer_id, precedence=precedence, first=first)
    poller.start()
    return poller


def test_the_others_wait_while_the_first_consumer_is_behind_and_go_on_when_it_catches_up():
    precedence = Precedence(["invoice-writer"], max_hold=60)
    first = ScriptedProcessor("invoice-writer", [(INVOKED, 5000, 100)], wait_for_script=True)
    other = ScriptedProcessor("archive-writer")
    _start(first, precedence, True)
    try:
        assert wait_for(lambda: precedence.status()["behind"])  # it read a batch with more behind it
        _start(other, precedence, False)
        time.sleep(0.3)  # the first consumer is busy with its next step meanwhile
        assert other.steps == 0  # held while the first one is behind
        first.add((IDLE, 0, 0))  # it catches up: an empty read at the tip
        assert wait_for(lambda: other.steps > 0)
        assert precedence.status()["holds"] >= 1 and precedence.status()["behind"] == []
    finally:
        for p in (first, other):
            p.stop_event.set()


def test_a_hold_is_bounded_so_the_others_lag_under_load_but_never_stop():
    precedence = Precedence(["invoice-writer"], max_hold=0.2)
    precedence.report(("invoice-writer", "shard-0"), True)  # behind, and it stays behind
    other = ScriptedProcessor("archive-writer")
    _start(other, precedence, False)
    try:
        assert wait_for(lambda: other.steps >= 2)
        assert precedence.status()["holds"] >= 2
    finally:
        other.stop_event.set()


def test_a_failing_first_consumer_holds_no_one_back():
    precedence = Precedence(["invoice-writer"], max_hold=60)
    precedence.report(("invoice-writer", "shard-0"), True)
    failing = ScriptedProcessor("invoice-writer", fail=True)
    other = ScriptedProcessor("archive-writer")
    pollers = [_start(failing, precedence, True), _start(other, precedence, False)]
    try:
        assert wait_for(lambda: other.steps > 0)
    finally:
        for p in (failing, other):
            p.stop_event.set()
    for poller in pollers:
        poller.join(5)


def test_a_consumer_at_the_tip_holds_no_one_back():
    precedence = Precedence(["invoice-writer"], max_hold=60)
    first = ScriptedProcessor("invoice-writer", [(INVOKED, 0, 0)] * 5)
    other = ScriptedProcessor("archive-writer")
    _start(first, precedence, True)
    _start(other, precedence, False)
    try:
        assert wait_for(lambda: other.steps > 5)
        assert precedence.status()["holds"] == 0
    finally:
        first.stop_event.set()
        other.stop_event.set()


def test_without_a_precedence_nothing_waits():
    other = ScriptedProcessor("archive-writer")
    _start(other, None, False)
    try:
        assert wait_for(lambda: other.steps > 3)
    finally:
        other.stop_event.set()
