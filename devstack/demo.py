"""``shopstream demo``: the main job, end to end, with a readable summary.

up → replay the data (``--max``) through the HTTP API → wait until every stream consumer
has drained (the invoice writer, the archive writer, the local Firehose) and a warehouse
merge that started afterwards has finished → reconcile the source with DynamoDB, the
archive and the warehouse (:mod:`devstack.reconcile`) → fetch every invoice back through
the HTTP API and compare it with the source → one summary over every sink (and a JSON
report with per-sink counts) → down.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import requests

from devstack import stack
from devstack.auth import bearer
from pipeline.events import money_display, money_str
from pipeline.kaggle import read_invoices
from pipeline.settings import DEFAULT_LARGE_ORDER_FROM
from scripts.replay_kaggle import format_summary, replay

SAMPLE = stack.ROOT / "data" / "sample" / "online-retail-2010-12-01_to_03.csv"


@dataclass
class Stored:
    invoices: int = 0
    lines: int = 0
    total: Decimal = Decimal(0)


@dataclass
class Verification:
    checked: int = 0
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.missing and not self.mismatched


def count_stored(config: stack.StackConfig, table: str) -> Stored:
    """Invoices, lines and money in the table (one paginated scan of the summaries)."""
    client = boto3.client("dynamodb", **_client_kwargs(config))
    stored = Stored()
    kwargs: dict[str, Any] = {
        "TableName": table,
        "ProjectionExpression": "#p, #n, #t",
        "ExpressionAttributeNames": {"#p": "part", "#n": "line_count", "#t": "total"},
    }
    while True:
        page = client.scan(**kwargs)
        for item in page["Items"]:
            if item["part"]["N"] == "0":
                stored.invoices += 1
                stored.lines += int(item["line_count"]["N"])
                stored.total += Decimal(item["total"]["N"])
        if "LastEvaluatedKey" not in page:
            return stored
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def queue_depth(config: stack.StackConfig, queue_url: str | None) -> int:
    if not queue_url:
        return 0
    client = boto3.client("sqs", **_client_kwargs(config))
    attributes = client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def _client_kwargs(config: stack.StackConfig) -> dict[str, str]:
    return {"endpoint_url": config.emulator_url, "region_name": config.region,
            "aws_access_key_id": "test", "aws_secret_access_key": "test"}


def verify_through_api(api_url: str, source: str, *, workers: int = 8, progress: bool = True,
                       token: str | None = None) -> Verification:
    """GET every invoice of the source back through the HTTP API (with ``token``, staff's
    access token); compare lines and total."""
    expected = {e.invoice_no: (len(e.lines), e.total) for e in read_invoices(source)}
    result = Verification()
    lock = threading.Lock()
    local = threading.local()
    started = time.monotonic()

    def check(invoice_no: str) -> None:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        response = session.get(f"{api_url}/invoices/{invoice_no}", timeout=30, headers=bearer(token))
        with lock:
            result.checked += 1
            if response.status_code != 200:
                result.missing.append(invoice_no)
                return
            body = response.json()
            lines, total = expected[invoice_no]
            if len(body["lines"]) != lines or Decimal(body["total"]) != total:
                result.mismatched.append(invoice_no)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(expected), unit=" invoices", desc="verify", mininterval=0.5, dynamic_ncols=True)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(check, expected):
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    result.seconds = round(time.monotonic() - started, 2)
    return result


def wait_for_every_sink(config: stack.StackConfig, info: stack.StackInfo, since: float, *,
                        timeout: float = 600.0, say: Callable[[str], None] = print) -> dict[str, float]:
    """Wait until every stream consumer has handled what was written before ``since``, then
    until a warehouse merge that started afterwards has completed; returns when each sink
    was complete (seconds after ``since``)."""
    from devstack.runtime.client import run_schedule, wait_for_schedule, wait_until_each_drained

    _, drained_at = wait_until_each_drained(config.admin_url, since=since, timeout=timeout)
    done = {name: round(max(0.0, at - since), 2) for name, at in sorted(drained_at.items(), key=lambda x: x[1])}
    drained = time.time()
    rule = info.outputs["warehouse"][stack.MERGE_RULE_OUTPUT]
    run_schedule(config.admin_url, rule)
    wait_for_schedule(config.admin_url, rule, since=drained, timeout=timeout)
    done["warehouse (merged, views refreshed)"] = round(time.time() - since, 2)
    return done


def run_demo(
    config: stack.StackConfig,
    *,
    data: str | None = None,
    report: str | None = None,
    keep: bool = False,
    verify: bool = True,
    drain_timeout: float = 600.0,
    say: Callable[[str], None] = print,
) -> int:
    from devstack import reconcile
    from pipeline.errors import SourceError
    from pipeline.kaggle import resolve_sources

    source = data or str(SAMPLE)
    label = "bundled sample" if data is None else "your data"
    try:
        resolve_sources(source)  # a wrong path is said now, not after the stack is up
    except SourceError as exc:
        say(f"demo: {exc}")
        return 2
    say(f"shopstream demo — {label}: {source}")
    info = stack.up(config, say=say)
    try:
        say(f"• replay          {source} → {config.api_url}/events (as fast as the pipeline takes)")
        started = time.monotonic()
        stats = replay(source, endpoint=config.api_url, token=stack.local_token(config, producer="replay"))
        replay_done = time.time()
        say("• drain           waiting for DynamoDB, the archive and the warehouse (merged, views refreshed)")
        sink_times = wait_for_every_sink(config, info, replay_done, timeout=drain_timeout, say=say)
        elapsed = round(time.monotonic() - started, 2)
        say("• reconcile       the source against every sink")
        source_figures, source_problems = reconcile.source_figures(source)
        sinks = reconcile.sink_figures(clients=stack.clients(config), outputs=info.outputs,
                                       execute=stack.warehouse_executor(config, info).execute)
        result = reconcile.reconcile(source_figures, sinks, source_problems)
        large = large_orders_announced(config, info, source)
        verification = (verify_through_api(config.api_url, source, token=stack.local_token(config, staff=True))
                        if verify else None)
    finally:
        if not keep:
            stack.down(config, quiet=True)

    ok = stats.ok and result.ok and (verification is None or verification.ok) and not any(
        sum(c.figures.set_aside.values()) for c in result.sinks.values()) and large.ok
    say("")
    say(format_summary(stats))
    say(_summary(info, result, verification, elapsed, sink_times, ok, keep, config, large))
    if report:
        sinks_report = result.to_dict()
        for name in reconcile.SINKS:
            sinks_report[name].pop("by_country", None)
        Path(report).write_text(json.dumps({
            "ok": ok,
            "source": source,
            "events_sent": stats.events_sent,
            "lines_sent": stats.lines_sent,
            "source_total": stats.source_total,
            "invoices_stored": len(result.sinks["dynamodb"].figures.invoices),
            "lines_stored": result.sinks["dynamodb"].figures.lines,
            "stored_total": money_str(result.sinks["dynamodb"].figures.revenue),
            "sinks": {name: {k: v for k, v in sinks_report[name].items() if k != "by_country"}
                      for name in reconcile.SINKS},
            "large_orders": {"in_source": len(large.expected), "announced": large.messages,
                             "missing": large.missing, "unexpected": large.unexpected, "repeated": large.repeated},
            "api_checked": verification.checked if verification else None,
            "api_missing": len(verification.missing) if verification else None,
            "api_mismatched": len(verification.mismatched) if verification else None,
            "elapsed_s": elapsed,
            "timings_s": {"terraform_apply": info.terraform_s, "replay": stats.elapsed_s, "end_to_end": elapsed,
                          "sinks_complete_after_last_request": sink_times,
                          "verify": verification.seconds if verification else None},
        }, indent=2))
        say(f"report written to {report}")
    return 0 if ok else 1


@dataclass
class LargeOrders:
    """The large-orders topic against the source: each large invoice announced once."""

    expected: list[str]
    messages: int
    missing: list[str]
    unexpected: list[str]
    repeated: list[str]

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.repeated)


def large_orders_announced(config: stack.StackConfig, info: stack.StackInfo, source: str) -> LargeOrders:
    from collections import Counter

    from consumers.notifications.core import is_large
    from devstack import notifications
    expected = sorted({e.invoice_no for e in read_invoices(source) if is_large(e, DEFAULT_LARGE_ORDER_FROM)})
    messages = notifications.fetch(config.emulator_url, info.outputs["large_orders_topic_arn"])
    counted = Counter(json.loads(m["message"]).get("invoice_no") for m in messages)
    return LargeOrders(expected, len(messages), sorted(set(expected) - set(counted)),
                       sorted(set(counted) - set(expected)), sorted(n for n, c in counted.items() if c > 1))


def _summary(info, result, verification, elapsed, sink_times, ok, keep, config, large=None) -> str:
    tick = lambda good: "✓" if good else "✗"  # noqa: E731
    source = result.source
    lines = ["", "summary",
             f"  source      {len(source.invoices):>9,} invoices  {source.lines:>9,} lines   £{money_display(source.revenue)}"]
    labels = {"dynamodb": "DynamoDB", "archive": "S3 archive", "warehouse": "warehouse"}
    for name, comparison in result.sinks.items():
        f = comparison.figures
        aside = sum(f.set_aside.values())
        lines.append(f"  {labels[name]:<11} {len(f.invoices):>9,} invoices  {f.lines:>9,} lines   "
                     f"£{money_display(f.revenue)}  {aside} set aside {tick(comparison.ok and not aside)}")
        for invoice_no in comparison.invoices[:5]:
            lines.append(f"    - differs: invoice {invoice_no}")
        for reason in f.reasons[:3]:
            lines.append(f"    - set aside: {reason}")
    if verification is not None:
        lines.append(
            f"  query API   {verification.checked - len(verification.missing):,}/{verification.checked:,} invoices retrievable, "
            f"{len(verification.mismatched)} totals differ {tick(verification.ok)} ({verification.seconds:.1f}s)")
        for invoice_no in (verification.missing + verification.mismatched)[:10]:
            lines.append(f"    - {invoice_no}")
    if large is not None:
        lines.append(f"  large orders {large.messages:>8,} announced on SNS for {len(large.expected):,} invoices from "
                     f"{money_display(DEFAULT_LARGE_ORDER_FROM)} in the source {tick(large.ok)}  (shopstream notifications)")
        for what, numbers in (("not announced", large.missing), ("not large", large.unexpected),
                              ("announced twice", large.repeated)):
            if numbers:
                lines.append(f"    - {what}: {', '.join(numbers[:10])}")
    complete = ", ".join(f"{name} +{seconds:.1f}s" for name, seconds in sink_times.items())
    lines += [
        f"  time        {elapsed:.1f}s from the first request to every sink complete (terraform apply {info.terraform_s:.1f}s before that)",
        f"              after the last request: {complete}",
        f"  result      {'OK' if ok else 'PROBLEMS (see above)'}",
    ]
    if keep:
        lines.append(f"  the stack is still up: shopstream sql \"select * from mv_sales_by_country_day limit 5\" · "
                     f"curl -H \"Authorization: Bearer $(shopstream token --staff)\" {config.api_url}/invoices/536365 · "
                     "`shopstream down` to stop it")
    return "\n".join(lines)
