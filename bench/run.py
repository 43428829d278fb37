"""End-to-end benchmark: the full dataset through the local stack, and in the same run the
seed design's baseline on a subset. ``make bench`` (or ``python -m bench.run DATA``).

Stages, all on this machine, all in one run (figures are only comparable within a run;
these machines are shared and noisy, so the report leads with ratios):

1. ``up``: emulator, terraform apply, local runtime (timed, not part of end to end).
2. read: the source read and grouped into events without sending (the parse cost alone).
3. pipeline: the replay (``--max``, HTTP) until every consumer has drained: end-to-end
   time, throughput, and the CPU seconds each process spent (emulator, local runtime with
   its function workers, replay client).
4. reconcile: invoices, lines and money in DynamoDB against the source.
5. query: sequential keep-alive GETs through the HTTP API (random invoices; customer
   histories), p50/p95/p99.
6. baseline: the seed design (bench/seed/handlers.py: one POST per row, one put_record per
   row, one update_item per line into a customer and an invoice table) deployed next to
   shopstream on the same emulator and runtime, fed the first N rows one request at a
   time; throughput and the lines it loses.

Results: printed, and written as JSON to bench/results/ (git-ignored); the figures and
the command go into BENCHMARKS.md by hand.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import psutil
import requests

from devstack import stack
from devstack.demo import count_stored, queue_depth, verify_through_api
from devstack.emulator import free_port
from devstack.runtime.client import discover, wait_until_drained
from pipeline.events import money_display
from pipeline.kaggle import COLUMNS, InvoiceGrouper, iter_source_rows, read_invoices
from scripts.replay_kaggle import replay

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Cpu:
    """CPU seconds (user + system) of a process tree, between two readings."""

    pid: int

    def read(self) -> float:
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0.0
        total = 0.0
        for proc in procs:
            try:
                times = proc.cpu_times()
                total += times.user + times.system + getattr(times, "children_user", 0) + getattr(times, "children_system", 0)
            except psutil.NoSuchProcess:
                pass
        return total


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"n": len(ordered), "p50_ms": round(pick(0.50), 2), "p95_ms": round(pick(0.95), 2),
            "p99_ms": round(pick(0.99), 2), "max_ms": round(ordered[-1], 2), "mean_ms": round(statistics.fmean(ordered), 2)}


def client(config: stack.StackConfig, service: str):
    return boto3.client(service, endpoint_url=config.emulator_url, region_name=config.region,
                        aws_access_key_id="test", aws_secret_access_key="test")


# ---- stages -------------------------------------------------------------------------


def stage_read(source: str) -> dict[str, Any]:
    started = time.perf_counter()
    cpu = time.process_time()
    grouper = InvoiceGrouper()
    invoices = lines = 0
    for event in read_invoices(source, grouper):
        invoices += 1
        lines += len(event.lines)
    return {"invoices": invoices, "lines": lines, "errors": len(grouper.errors),
            "seconds": round(time.perf_counter() - started, 2), "cpu_s": round(time.process_time() - cpu, 2)}


def stage_pipeline(config: stack.StackConfig, source: str, drain_timeout: float) -> dict[str, Any]:
    emulator = Cpu(int((config.run_dir / "emulator.pid").read_text()))
    runtime = Cpu(int((config.run_dir / "runtime.pid").read_text()))
    before = (emulator.read(), runtime.read(), time.process_time())
    started = time.perf_counter()
    stats = replay(source, endpoint=config.api_url, progress=True)
    replay_done_wall, replay_s = time.time(), time.perf_counter() - started
    wait_until_drained(config.admin_url, since=replay_done_wall, timeout=drain_timeout)
    end_to_end = time.perf_counter() - started
    after = (emulator.read(), runtime.read(), time.process_time())
    status = requests.get(f"{config.admin_url}/status", timeout=10).json()
    functions = {f["name"]: {k: f.get(k) for k in ("invocations", "errors", "cold_starts")} for f in status["functions"]}
    shards = [s for m in status["consumers"] for s in m["shards"]]
    return {
        "ok": stats.ok,
        "events_sent": stats.events_sent, "lines_sent": stats.lines_sent, "requests": stats.requests,
        "source_total": stats.source_total,
        "replay_s": round(replay_s, 2),
        "drain_after_replay_s": round(end_to_end - replay_s, 2),
        "end_to_end_s": round(end_to_end, 2),
        "lines_per_s": round(stats.lines_sent / end_to_end),
        "invoices_per_s": round(stats.events_sent / end_to_end),
        "cpu_s": {"emulator": round(after[0] - before[0], 2), "runtime_and_functions": round(after[1] - before[1], 2),
                  "replay_client": round(after[2] - before[2], 2)},
        "functions": functions,
        "kinesis": {"records": sum(s.get("records_processed", 0) for s in shards),
                    "batches": sum(s.get("batches_invoked", 0) for s in shards),
                    "failed_batches": sum(s.get("batch_failures", 0) for s in shards)},
    }


def stage_reconcile(config: stack.StackConfig, info: stack.StackInfo, pipeline: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    stored = count_stored(config, info.outputs["invoices_table_name"])
    return {
        "invoices_stored": stored.invoices, "lines_stored": stored.lines, "stored_total": f"{stored.total}",
        "reconciled": stored.total == Decimal(pipeline["source_total"]) and stored.invoices == pipeline["events_sent"]
                      and stored.lines == pipeline["lines_sent"],
        "quarantined": queue_depth(config, info.outputs["quarantine_queue_url"]),
        "failed_batches": sum(queue_depth(config, url) for url in info.outputs["failures_queue_urls"].values()),
        "seconds": round(time.perf_counter() - started, 2),
    }


def stage_query(config: stack.StackConfig, source: str, n: int, seed: int = 7) -> dict[str, Any]:
    events = list(read_invoices(source))
    rng = random.Random(seed)
    invoices = [e.invoice_no for e in rng.sample(events, min(n, len(events)))]
    customers = sorted({e.customer_id for e in events if e.customer_id})
    session = requests.Session()
    session.get(f"{config.api_url}/invoices/{invoices[0]}", timeout=10)  # warm the worker
    by_invoice, by_customer = [], []
    for invoice_no in invoices:
        started = time.perf_counter()
        response = session.get(f"{config.api_url}/invoices/{invoice_no}", timeout=10)
        by_invoice.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    for customer in rng.sample(customers, min(n // 4, len(customers))):
        started = time.perf_counter()
        response = session.get(f"{config.api_url}/customers/{customer}/invoices", params={"limit": 20}, timeout=10)
        by_customer.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return {"get_invoice": percentiles(by_invoice), "customer_history": percentiles(by_customer)}


# ---- the seed baseline --------------------------------------------------------------


def deploy_baseline(config: stack.StackConfig, info: stack.StackInfo) -> dict[str, str]:
    """The seed design's resources, next to shopstream's, in the same emulator."""
    names = {"stream": "seed-events", "customers": "seed-customers", "invoices": "seed-invoices"}
    kinesis, dynamodb, iam, lam, api = (client(config, s) for s in ("kinesis", "dynamodb", "iam", "lambda", "apigatewayv2"))
    kinesis.create_stream(StreamName=names["stream"], ShardCount=1)
    dynamodb.create_table(TableName=names["customers"], BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "customer_id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "customer_id", "AttributeType": "S"}])
    dynamodb.create_table(TableName=names["invoices"], BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "invoice_no", "KeyType": "HASH"}, {"AttributeName": "stock_code", "KeyType": "RANGE"}],
                          AttributeDefinitions=[{"AttributeName": "invoice_no", "AttributeType": "S"}, {"AttributeName": "stock_code", "AttributeType": "S"}])
    role = iam.create_role(RoleName="seed-baseline", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.write(Path(__file__).resolve().parent / "seed" / "handlers.py", "bench/seed/handlers.py")
    env = {"Variables": {"SEED_STREAM": names["stream"], "SEED_CUSTOMERS": names["customers"], "SEED_INVOICES": names["invoices"]}}
    arns = {}
    for name, handler in (("seed-ingest", "bench.seed.handlers.ingest"), ("seed-consumer", "bench.seed.handlers.consumer")):
        arns[name] = lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler=handler,
                                         Code={"ZipFile": code.getvalue()}, Timeout=60, Environment=env)["FunctionArn"]
    stream_arn = kinesis.describe_stream_summary(StreamName=names["stream"])["StreamDescriptionSummary"]["StreamARN"]
    lam.create_event_source_mapping(FunctionName="seed-consumer", EventSourceArn=stream_arn, StartingPosition="TRIM_HORIZON", BatchSize=100)
    integration = api.create_integration(ApiId=info.outputs["api_id"], IntegrationType="AWS_PROXY",
                                         IntegrationUri=arns["seed-ingest"], PayloadFormatVersion="2.0")["IntegrationId"]
    api.create_route(ApiId=info.outputs["api_id"], RouteKey="POST /seed/rows", Target=f"integrations/{integration}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = discover(config.admin_url)
        routes = {r["route_key"] for a in state["gateway"]["apis"] for r in a["routes"]}
        if "POST /seed/rows" in routes and any(m["name"] == "seed-consumer" for m in state["consumers"]):
            return names
        time.sleep(0.2)
    raise RuntimeError("the runtime did not pick up the baseline's route and mapping")


def stage_baseline(config: stack.StackConfig, info: stack.StackInfo, source: str, rows: int, drain_timeout: float) -> dict[str, Any]:
    names = deploy_baseline(config, info)
    session = requests.Session()
    sent = 0
    started = time.perf_counter()
    for row in iter_source_rows(source):
        if row.values is None:
            continue
        response = session.post(f"{config.api_url}/seed/rows", json=dict(zip(COLUMNS, row.values)), timeout=30)
        assert response.status_code == 200, response.text
        sent += 1
        if sent >= rows:
            break
    wait_until_drained(config.admin_url, since=time.time(), timeout=drain_timeout)
    elapsed = time.perf_counter() - started
    dynamodb = client(config, "dynamodb")
    stored = dynamodb.scan(TableName=names["invoices"], Select="COUNT")["Count"]
    return {"rows_sent": sent, "lines_stored": stored, "lines_lost": sent - stored,
            "lost_pct": round(100 * (sent - stored) / sent, 2), "seconds": round(elapsed, 2),
            "lines_per_s": round(sent / elapsed, 1)}


# ---- report -------------------------------------------------------------------------


def report(results: dict[str, Any]) -> str:
    p, r, q, b = results["pipeline"], results["reconcile"], results["query"], results.get("baseline")
    lines = [
        "",
        f"shopstream benchmark — {results['source']}  ({results['machine']})",
        f"  stack up           terraform apply {results['up']['terraform_apply_s']:.1f}s (not part of end to end)",
        f"  read + group only  {results['read']['lines']:,} lines → {results['read']['invoices']:,} invoices in {results['read']['seconds']:.1f}s",
        f"  end to end         {p['end_to_end_s']:.1f}s  = replay {p['replay_s']:.1f}s + drain after the last request {p['drain_after_replay_s']:.1f}s",
        f"                     {p['lines_per_s']:,} lines/s · {p['invoices_per_s']:,} invoices/s · {p['requests']} HTTP requests · "
        f"{p['kinesis']['records']:,} Kinesis records in {p['kinesis']['batches']} batches",
        f"  CPU seconds        emulator {p['cpu_s']['emulator']:.1f} · runtime+functions {p['cpu_s']['runtime_and_functions']:.1f} · "
        f"replay client {p['cpu_s']['replay_client']:.1f}",
        f"  stored             {r['invoices_stored']:,} invoices · {r['lines_stored']:,} lines · £{money_display(r['stored_total'])} · "
        f"reconciled {'yes' if r['reconciled'] else 'NO'} · quarantined {r['quarantined']} · failed batches {r['failed_batches']}",
        f"  GET /invoices      p50 {q['get_invoice']['p50_ms']} ms · p99 {q['get_invoice']['p99_ms']} ms (n={q['get_invoice']['n']})",
        f"  GET /customers     p50 {q['customer_history']['p50_ms']} ms · p99 {q['customer_history']['p99_ms']} ms (n={q['customer_history']['n']})",
    ]
    if "verify" in results:
        v = results["verify"]
        lines.append(f"  every invoice      {v['checked'] - v['missing']:,}/{v['checked']:,} retrievable, {v['mismatched']} totals differ ({v['seconds']:.0f}s)")
    if b:
        lines += [
            f"  seed baseline      {b['rows_sent']:,} rows in {b['seconds']:.1f}s = {b['lines_per_s']} lines/s; "
            f"lost {b['lines_lost']} lines ({b['lost_pct']}%) to stock-code keys",
            f"  ratio              {results['ratio_vs_baseline']:,.0f}× the baseline's throughput",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="the data: a Kaggle zip, CSV, directory or glob (e.g. ../shared/data/online-retail/by-day)")
    parser.add_argument("--baseline-rows", type=int, default=2000, help="rows fed to the seed baseline (0: skip it)")
    parser.add_argument("--queries", type=int, default=2000, help="GET /invoices requests for the latency figures")
    parser.add_argument("--verify", action="store_true", help="also fetch every invoice through the API and compare it")
    parser.add_argument("--drain-timeout", type=float, default=900.0)
    parser.add_argument("--out", help="JSON results file (default bench/results/<time>.json)")
    args = parser.parse_args(argv)
    if not os.path.exists(args.source) and not any(c in args.source for c in "*?["):
        print(f"bench: {args.source} not found (the full dataset lives in ../shared/data/online-retail/by-day)", file=sys.stderr)
        return 2

    config = stack.StackConfig(state_dir=Path(tempfile.mkdtemp(prefix="shopstream-bench-")),
                               emulator_port=free_port(), gateway_port=free_port(), admin_port=free_port())
    results: dict[str, Any] = {
        "source": args.source,
        "command": "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()}, {psutil.cpu_count()} cores, Python {platform.python_version()}",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    print("• read + group (no sending)")
    results["read"] = stage_read(args.source)
    info = stack.up(config)
    try:
        results["up"] = {"terraform_apply_s": info.terraform_s}
        print("• pipeline: replay --max until drained")
        results["pipeline"] = stage_pipeline(config, args.source, args.drain_timeout)
        results["reconcile"] = stage_reconcile(config, info, results["pipeline"])
        print("• query latency")
        results["query"] = stage_query(config, args.source, args.queries)
        if args.verify:
            v = verify_through_api(config.api_url, args.source)
            results["verify"] = {"checked": v.checked, "missing": len(v.missing), "mismatched": len(v.mismatched), "seconds": v.seconds}
        if args.baseline_rows:
            print(f"• seed baseline: {args.baseline_rows} rows, one request each")
            results["baseline"] = stage_baseline(config, info, args.source, args.baseline_rows, args.drain_timeout)
            results["ratio_vs_baseline"] = round(results["pipeline"]["lines_per_s"] / results["baseline"]["lines_per_s"], 1)
    finally:
        stack.down(config, quiet=True)
    print(report(results))
    RESULTS.mkdir(exist_ok=True)
    out = Path(args.out) if args.out else RESULTS / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"\nresults: {out}")
    return 0 if results["pipeline"]["ok"] and results["reconcile"]["reconciled"] else 1


if __name__ == "__main__":
    sys.exit(main())
