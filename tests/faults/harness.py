"""What every fault case shares: the data it delivers, the stack it runs on, the faults it
injects, emptying the sinks between cases, and the check each case ends with.

The data is the bundled sample by default (the fast variant ``make test`` runs) or the
dataset named by ``SHOPSTREAM_FAULTS_DATA`` (``make faults``: the full real dataset).
Every case ends in :func:`check`: ``reconcile`` of the source against DynamoDB, the
archive and the warehouse, each sink's figures expected exactly — 0 source lines
missing, 0 lines beyond the source's — and what was set aside counted where the case
says it belongs — and in the large-orders topic's record: each large invoice of the
source announced once.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from consumers.notifications.core import is_large
from devstack import notifications, reconcile, stack
from devstack.emulator.faults import CONTROL_PATH
from devstack.runtime.client import run_schedule, wait_for_schedule, wait_until_drained
from pipeline.events import InvoiceEvent
from pipeline.settings import DEFAULT_LARGE_ORDER_FROM

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample" / "online-retail-2010-12-01_to_03.csv"
DATA = Path(os.environ.get("SHOPSTREAM_FAULTS_DATA") or SAMPLE)
FULL = DATA != SAMPLE
# the fast variant paces the HTTP replay so a kill lands while it runs; the full data runs flat out
HTTP_RATE = None if FULL else 60.0
SETTLE_TIMEOUT = 900.0 if FULL else 240.0
REPORT = ROOT / "build" / "faults" / ("last-run-full.json" if FULL else "last-run.json")

# the warehouse tables a delivery fills (dim_date is a calendar, shopstream_migrations the schema's record)
WAREHOUSE_TABLES = ("stg_invoice_lines", "fact_invoice_lines", "invoice_deliveries", "dim_products", "dim_customers",
                    "shopstream_merge_runs", "shopstream_view_refreshes")


@dataclass
class Stack:
    """The running stack of the fault suite (``info`` changes when a case re-creates it)."""

    config: stack.StackConfig
    info: stack.StackInfo

    @property
    def outputs(self) -> dict[str, Any]:
        return self.info.outputs

    def client(self, service: str) -> Any:
        return stack.clients(self.config)(service)

    def execute(self, sql: str) -> Any:
        return stack.warehouse_executor(self.config, self.info).execute(sql)


@dataclass
class CaseResult:
    """One line of the suite's summary."""

    case: str
    data: str
    events_delivered: int = 0          # events sent to the pipeline, duplicates and poison included
    faults: dict[str, int] = field(default_factory=dict)   # what was injected, and how often it fired
    poison: int = 0                    # inputs no sink may store
    set_aside: dict[str, dict[str, int]] = field(default_factory=dict)
    lost: dict[str, int] = field(default_factory=dict)
    extra: dict[str, int] = field(default_factory=dict)
    notifications: int = 0             # large-order messages published (one per large invoice)
    seconds: float = 0.0
    ok: bool = False


RESULTS: list[CaseResult] = []


# -- faults in the emulator --------------------------------------------------------------------
class Faults:
    def __init__(self, emulator_url: str) -> None:
        self.url = emulator_url + CONTROL_PATH

    def install(self, *rules: dict[str, Any]) -> None:
        response = requests.post(self.url, json=list(rules), timeout=10)
        response.raise_for_status()

    def rules(self) -> list[dict[str, Any]]:
        return requests.get(self.url, timeout=10).json()["rules"]

    def clear(self) -> list[dict[str, Any]]:
        return requests.delete(self.url, timeout=10).json()["removed"]


def kill_runtime(s: Stack) -> None:
    """SIGKILL the local runtime and every worker it started (its process group)."""
    pid = stack._pid(s.config, "runtime")
    assert pid is not None, "the runtime is not running"
    os.killpg(pid, signal.SIGKILL)
    wait_until(lambda: stack._pid(s.config, "runtime") is None, 20, "the killed runtime to be gone")


def kill_emulator(s: Stack) -> None:
    pid = stack._pid(s.config, "emulator")
    assert pid is not None, "the emulator is not running"
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: stack._pid(s.config, "emulator") is None, 20, "the killed emulator to be gone")


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def stored_items(s: Stack) -> int:
    """Items in the invoices table now (moto counts them as they are written)."""
    table = s.client("dynamodb").describe_table(TableName=s.outputs["invoices_table_name"])["Table"]
    return int(table.get("ItemCount") or 0)


def wait_for_progress(s: Stack, sender: Background, items: int, timeout: float = 120.0) -> None:
    """Until the table holds ``items`` items while ``sender`` still runs (its error, if it failed)."""
    wait_until(lambda: stored_items(s) >= items or not sender.running, timeout, f"{items} items stored")
    if not sender.running:
        sender.result(0)
        raise AssertionError(f"the replay ended before {items} items were stored ({stored_items(s)} are)")


class Background:
    """A function run in a thread, its result or exception kept for :meth:`result`."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self.value = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            self.error = exc

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def result(self, timeout: float) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"still running after {timeout:.0f}s"
        if self.error is not None:
            raise self.error
        return self.value


# -- the data ----------------------------------------------------------------------------------
_SOURCE: dict[str, Any] = {}


def source() -> reconcile.Figures:
    if "figures" not in _SOURCE:
        figures, problems = reconcile.source_figures(str(DATA))
        assert problems == 0, f"{problems} unreadable rows in {DATA}"
        _SOURCE["figures"] = figures
    return _SOURCE["figures"]


def source_events() -> list[InvoiceEvent]:
    if "events" not in _SOURCE:
        from pipeline.kaggle import InvoiceGrouper, read_invoices

        _SOURCE["events"] = list(read_invoices(str(DATA), InvoiceGrouper()))
    return _SOURCE["events"]


def with_extra(figures: reconcile.Figures, events: Iterable[InvoiceEvent]) -> reconcile.Figures:
    out = reconcile.Figures(invoices=dict(figures.invoices))
    for event in events:
        out.add(event.invoice_no, event.country, len(event.lines), event.total)
    return out


# -- settling, emptying, checking --------------------------------------------------------------
def settle(s: Stack) -> None:
    """Every consumer at the tip of the stream, Firehose delivered, the warehouse merged."""
    wait_until_drained(s.config.admin_url, since=time.time(), timeout=SETTLE_TIMEOUT)
    rule = s.outputs["warehouse"][stack.MERGE_RULE_OUTPUT]
    since = time.time()
    run_schedule(s.config.admin_url, rule)
    wait_for_schedule(s.config.admin_url, rule, since=since, timeout=SETTLE_TIMEOUT)


def empty_sinks(s: Stack) -> None:
    """Remove what earlier cases stored (the deployment stays), so a case's losses cannot
    hide behind an earlier case's deliveries; the consumers are at the tip of the stream."""
    settle(s)
    dynamodb, s3, sqs = s.client("dynamodb"), s.client("s3"), s.client("sqs")
    table = s.outputs["invoices_table_name"]
    kwargs: dict[str, Any] = {"TableName": table, "ProjectionExpression": "invoice_no, #p",
                              "ExpressionAttributeNames": {"#p": "part"}}
    while True:
        page = dynamodb.scan(**kwargs)
        keys = page["Items"]
        for start in range(0, len(keys), 25):
            pending = {table: [{"DeleteRequest": {"Key": key}} for key in keys[start:start + 25]]}
            while pending:
                pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    written = [(s.outputs["archive_bucket_name"], s.outputs["archive_prefix"])]  # not what Terraform put there
    written += [(s.outputs["delivery_bucket_name"], prefix) for prefix in s.outputs["firehose_prefixes"].values()]
    for bucket, prefix in written:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if objects:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
    for url in [s.outputs["quarantine_queue_url"], *s.outputs["failures_queue_urls"].values()]:
        while True:  # received and deleted (PurgeQueue may run once a minute)
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not messages:
                break
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)])
    for name in WAREHOUSE_TABLES:
        s.execute(f"DELETE FROM {name}")
    ledger = s.outputs["order_notifications_table_name"]  # announced invoices, and what the topic was sent
    for page in dynamodb.get_paginator("scan").paginate(TableName=ledger, ProjectionExpression="invoice_no"):
        for item in page["Items"]:
            dynamodb.delete_item(TableName=ledger, Key={"invoice_no": item["invoice_no"]})
    notifications.clear(s.config.emulator_url, s.outputs["large_orders_topic_arn"])
    assert dynamodb.scan(TableName=ledger, Select="COUNT")["Count"] == 0
    empty = reconcile.sink_figures(clients=stack.clients(s.config), outputs=s.outputs, execute=s.execute)
    for name, figures in empty.items():
        assert not figures.invoices and not any(figures.set_aside.values()), (name, figures.set_aside)


def large_orders(events: Iterable[InvoiceEvent]) -> list[str]:
    """Invoice numbers the order notifier must announce: the large ones (at the default threshold)."""
    return sorted(e.invoice_no for e in events if is_large(e, DEFAULT_LARGE_ORDER_FROM))


def check_notifications(s: Stack, result: CaseResult, *, may_repeat: int = 0) -> None:
    """Each large invoice of the source announced once: ``may_repeat`` allows that many second
    messages (a process killed between publishing and recording it, which the notifier documents)."""
    messages = notifications.fetch(s.config.emulator_url, s.outputs["large_orders_topic_arn"])
    announced = Counter(json.loads(m["message"])["invoice_no"] for m in messages)
    result.notifications = len(messages)
    assert sorted(announced) == large_orders(source_events()), "announced ≠ the source's large invoices"
    repeats = sum(n - 1 for n in announced.values())
    assert repeats <= may_repeat, {no: n for no, n in announced.items() if n > 1}


def check(s: Stack, result: CaseResult, *, expected: dict[str, reconcile.Figures] | None = None,
          set_aside: dict[str, dict[str, int]] | None = None, faults: Faults | None = None,
          notifications_may_repeat: int = 0) -> reconcile.Report:
    """The case's last step: settle, then reconcile every sink with what it must hold.

    ``expected`` overrides the source for a sink (a case that delivers an extra event some
    sink must store); ``set_aside`` is what each sink must have set aside (nothing, unless
    said). Records the case's line of the summary, then asserts."""
    settle(s)
    base = source()
    sinks = reconcile.sink_figures(clients=stack.clients(s.config), outputs=s.outputs, execute=s.execute)
    comparisons = {name: reconcile.compare(name, (expected or {}).get(name, base), figures)
                   for name, figures in sinks.items()}
    report = reconcile.Report(base, comparisons)
    print(reconcile.format_report(report))
    if faults is not None:
        for rule in faults.rules():
            key = f"{rule['action']} {rule['mode']}" + (f" {rule['code']}" if rule["mode"] == "error" else "")
            result.faults[key] = result.faults.get(key, 0) + (rule["entries_failed"] or rule["fired"])
    result.set_aside = {name: {k: v for k, v in figures.set_aside.items() if v} for name, figures in sinks.items()}
    result.lost = {name: c.lost_lines for name, c in comparisons.items()}
    result.extra = {name: c.extra_lines for name, c in comparisons.items()}
    wanted_aside = {name: dict((set_aside or {}).get(name, {})) for name in sinks}
    result.ok = report.ok and result.set_aside == wanted_aside
    assert report.ok, {name: (c.lost_lines, c.extra_lines, c.invoices) for name, c in comparisons.items() if not c.ok}
    assert result.set_aside == wanted_aside, result.set_aside
    result.ok = False  # until the large orders are checked too
    check_notifications(s, result, may_repeat=notifications_may_repeat)
    result.ok = True
    return report


def write_report() -> Path | None:
    if not RESULTS:
        return None
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    figures = source()
    REPORT.write_text(json.dumps({
        "data": str(DATA), "source": {"invoices": len(figures.invoices), "lines": figures.lines,
                                      "revenue": str(figures.revenue)},
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "cases": [vars(r) for r in RESULTS],
    }, indent=2, default=str))
    return REPORT


def summary_lines() -> list[str]:
    if not RESULTS:
        return []
    figures = source()
    lines = [f"fault suite on {DATA.name}: {len(figures.invoices):,} invoices, {figures.lines:,} lines, "
             f"£{figures.revenue:,}",
             f"  {'case':<44} {'events':>9} {'faults':>7} {'poison':>6} {'lost':>5} {'extra':>5} {'large':>5} {'s':>6}"]
    for r in RESULTS:
        lines.append(f"  {r.case:<44} {r.events_delivered:>9,} {sum(r.faults.values()):>7,} {r.poison:>6} "
                     f"{sum(r.lost.values()):>5} {sum(r.extra.values()):>5} {r.notifications:>5} {r.seconds:>6.0f}"
                     f"  {'ok' if r.ok else 'FAILED'}")
    return lines
