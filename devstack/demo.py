"""``shopstream demo``: the main job, end to end, with a readable summary.

up → replay the data (``--max``) through the HTTP API → wait until every consumer has
drained → count and reconcile what DynamoDB holds → fetch every invoice back through the
HTTP API and compare it with the source → summary (and JSON report) → down.
"""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import boto3
import requests

from devstack import stack
from pipeline.events import money_display, money_str
from pipeline.kaggle import read_invoices
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


def verify_through_api(api_url: str, source: str, *, workers: int = 8, progress: bool = True) -> Verification:
    """GET every invoice of the source back through the HTTP API; compare lines and total."""
    expected = {e.invoice_no: (len(e.lines), e.total) for e in read_invoices(source)}
    result = Verification()
    lock = threading.Lock()
    local = threading.local()
    started = time.monotonic()

    def check(invoice_no: str) -> None:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        response = session.get(f"{api_url}/invoices/{invoice_no}", timeout=30)
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
    from devstack.runtime.client import wait_until_drained

    source = data or str(SAMPLE)
    label = "bundled sample" if data is None else "your data"
    say(f"shopstream demo — {label}: {source}")
    info = stack.up(config, say=say)
    try:
        say(f"• replay          {source} → {config.api_url}/events (as fast as the pipeline takes)")
        started = time.monotonic()
        stats = replay(source, endpoint=config.api_url)
        replay_done = time.time()
        say("• drain           waiting until every consumer has caught up")
        wait_until_drained(config.admin_url, since=replay_done, timeout=drain_timeout)
        elapsed = round(time.monotonic() - started, 2)
        stored = count_stored(config, info.outputs["invoices_table_name"])
        quarantined = queue_depth(config, info.outputs.get("quarantine_queue_url"))
        failed_batches = sum(queue_depth(config, url) for url in (info.outputs.get("failures_queue_urls") or {}).values())
        verification = verify_through_api(config.api_url, source) if verify else None
    finally:
        if not keep:
            stack.down(config, quiet=True)

    reconciled = stored.total == Decimal(stats.sent_total) == Decimal(stats.source_total)
    complete = stored.invoices == stats.events_sent and stored.lines == stats.lines_sent
    ok = stats.ok and complete and reconciled and quarantined == 0 and failed_batches == 0 and (verification is None or verification.ok)
    say("")
    say(format_summary(stats))
    say(_summary(info, stats, stored, quarantined, failed_batches, verification, elapsed, complete, reconciled, ok, keep, config))
    if report:
        Path(report).write_text(json.dumps({
            "ok": ok,
            "source": source,
            "events_sent": stats.events_sent,
            "lines_sent": stats.lines_sent,
            "invoices_stored": stored.invoices,
            "lines_stored": stored.lines,
            "elapsed_s": elapsed,
            "source_total": stats.source_total,
            "stored_total": money_str(stored.total),
            "quarantined": quarantined,
            "failed_batches": failed_batches,
            "api_checked": verification.checked if verification else None,
            "api_missing": len(verification.missing) if verification else None,
            "api_mismatched": len(verification.mismatched) if verification else None,
            "timings_s": {"terraform_apply": info.terraform_s, "replay": stats.elapsed_s, "end_to_end": elapsed,
                          "verify": verification.seconds if verification else None},
        }, indent=2))
        say(f"report written to {report}")
    return 0 if ok else 1


def _summary(info, stats, stored, quarantined, failed_batches, verification, elapsed, complete, reconciled, ok, keep, config) -> str:
    tick = lambda good: "✓" if good else "✗"  # noqa: E731
    lines = [
        "",
        "summary",
        f"  stored      {stored.invoices:>9,} invoices  {stored.lines:>9,} lines   in DynamoDB {tick(complete)}",
        f"  money       source £{money_display(stats.source_total)} · stored £{money_display(stored.total)} {tick(reconciled)}",
        f"  quarantine  {quarantined} poison events · {failed_batches} failed batches {tick(quarantined == 0 and failed_batches == 0)}",
    ]
    if verification is not None:
        lines.append(
            f"  query API   {verification.checked - len(verification.missing):,}/{verification.checked:,} invoices retrievable, "
            f"{len(verification.mismatched)} totals differ {tick(verification.ok)} ({verification.seconds:.1f}s)")
        for invoice_no in (verification.missing + verification.mismatched)[:10]:
            lines.append(f"    - {invoice_no}")
    lines += [
        f"  time        {elapsed:.1f}s from the first request to fully drained (terraform apply {info.terraform_s:.1f}s before that)",
        f"  result      {'OK' if ok else 'PROBLEMS (see above)'}",
    ]
    if keep:
        lines.append(f"  the stack is still up: curl {config.api_url}/invoices/536365 · `shopstream down` to stop it")
    return "\n".join(lines)
