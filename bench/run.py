"""End-to-end benchmark: the full dataset through the local stack into every sink, and in
the same run the seed design's baseline on a subset. ``make bench`` (or
``python -m bench.run DATA``).

Stages, all on this machine, all in one run (figures are only comparable within a run;
these machines are shared and noisy, so the report leads with ratios):

1. ``up``: emulator, terraform apply, local runtime (timed, not part of end to end).
2. read: the source read and grouped into events without sending (the parse cost alone).
3. pipeline: the replay (``--max``, HTTP) until every sink is complete: when each stream
   consumer caught up (the invoice writer → DynamoDB, the archive writer → S3, the local
   Firehose → the warehouse's staging table), then when a warehouse merge started after
   that has finished with the views refreshed (triggered at once, as ``shopstream demo``
   does); end-to-end time, throughput, and the CPU seconds each process spent (the
   emulator, which also runs the warehouse; the local runtime with its function workers;
   the replay client).
4. reconcile: the source against DynamoDB, the archive and the warehouse
   (:mod:`devstack.reconcile`), exact.
5. freshness: single invoices POSTed to the API on the loaded stack, each timed until it is
   in ``mv_sales_by_country_day`` — with the local schedule as it runs (the merge every
   5 s), nothing triggered.
6. dashboard: the dashboard's queries (:mod:`devstack.dashboard`) and the raw top-3 query
   through the Data API, and for PostgreSQL also straight over its wire protocol (what
   Tableau does), p50/p99.
7. query: sequential keep-alive GETs through the HTTP API (random invoices; customer
   histories), p50/p95/p99.
8. baseline: the seed design (bench/seed/handlers.py: one POST per row, one put_record per
   row, one update_item per line into a customer and an invoice table) deployed next to
   shopstream on the same emulator and runtime, fed the first N rows one request at a
   time; throughput and the lines it loses.

Stages 1-6 run twice: with the default DuckDB warehouse, then with a throwaway
PostgreSQL 15 (``--warehouse-backends``); 7-8 run once. First, as the same-run yardstick
for the DynamoDB sink, stages 1, 3 and 4 run on a stack whose analytics consumers are
removed right after ``up`` (the archive writer's mapping, the delivery stream, the merge
schedule): the invoice path alone, on the same machine, minutes apart.

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

from devstack import reconcile, stack
from devstack.auth import bearer
from devstack.demo import verify_through_api
from devstack.emulator import free_port
from devstack.runtime.client import (
    discover,
    run_schedule,
    status,
    wait_for_schedule,
    wait_until_drained,
    wait_until_each_drained,
)
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


SINK_OF = {"invoice-writer": "dynamodb", "archive-writer": "archive", "warehouse": "warehouse staging"}


def _sink(consumer: dict) -> str:
    name = (consumer.get("name") or "").removeprefix("shopstream-")
    return SINK_OF.get(name, name)


def stage_pipeline(config: stack.StackConfig, info: stack.StackInfo, source: str, drain_timeout: float) -> dict[str, Any]:
    emulator = Cpu(int((config.run_dir / "emulator.pid").read_text()))
    runtime = Cpu(int((config.run_dir / "runtime.pid").read_text()))
    before = (emulator.read(), runtime.read(), time.process_time())
    started, start_wall = time.perf_counter(), time.time()
    stats = replay(source, endpoint=config.api_url, progress=True, token=stack.local_token(config, producer="replay"))
    replay_done_wall, replay_s = time.time(), time.perf_counter() - started
    # each stream consumer's completion: the first status in which none of its shards lags
    _, drained_at = wait_until_each_drained(config.admin_url, since=replay_done_wall, timeout=drain_timeout)
    complete = {_sink({"name": name}): round(at - start_wall, 2) for name, at in sorted(drained_at.items(), key=lambda x: x[1])}
    merge: dict = {}
    if "warehouse staging" in complete:
        staged_wall = time.time()
        rule = info.outputs["warehouse"][stack.MERGE_RULE_OUTPUT]
        run_schedule(config.admin_url, rule)
        merge = wait_for_schedule(config.admin_url, rule, since=staged_wall, timeout=drain_timeout)
        complete["warehouse (merged, views refreshed)"] = round(time.perf_counter() - started, 2)
    end_to_end = time.perf_counter() - started
    after = (emulator.read(), runtime.read(), time.process_time())
    state = status(config.admin_url)
    functions = {f["name"]: {k: f.get(k) for k in ("invocations", "errors", "cold_starts")} for f in state["functions"]}
    shards_of = lambda pick: [s for c in state["consumers"] if pick(c) for s in c["shards"]]  # noqa: E731
    esm = shards_of(lambda c: _sink(c) == "dynamodb")
    firehose = shards_of(lambda c: c["kind"] == "firehose")
    return {
        "ok": stats.ok,
        "events_sent": stats.events_sent, "lines_sent": stats.lines_sent, "requests": stats.requests,
        "source_total": stats.source_total,
        "replay_s": round(replay_s, 2),
        "sinks_complete_s": complete,
        "end_to_end_s": round(end_to_end, 2),
        "lines_per_s": round(stats.lines_sent / end_to_end),
        "invoices_per_s": round(stats.events_sent / end_to_end),
        "last_merge": merge.get("last_result"),
        "cpu_s": {"emulator_and_warehouse": round(after[0] - before[0], 2),
                  "runtime_and_functions": round(after[1] - before[1], 2),
                  "replay_client": round(after[2] - before[2], 2)},
        "functions": functions,
        "precedence": state.get("precedence"),
        "kinesis": {"records": sum(s.get("records_processed", 0) for s in esm),
                    "batches": sum(s.get("batches_invoked", 0) for s in esm),
                    "failed_batches": sum(s.get("batch_failures", 0) for s in esm)},
        "firehose": {"deliveries": sum(s.get("deliveries", 0) for s in firehose),
                     "transform_invocations": sum(s.get("transform_invocations", 0) for s in firehose),
                     "rows_loaded": sum(s.get("rows_loaded", 0) for s in firehose),
                     "processing_failed": sum(s.get("records_processing_failed", 0) for s in firehose)},
    }


def remove_analytics(config: stack.StackConfig, info: stack.StackInfo) -> None:
    """Leave the invoice path alone on the stack: no archive writer, no Firehose, no merge."""
    clients = stack.clients(config)
    clients("lambda").delete_event_source_mapping(UUID=info.outputs["event_source_mapping_uuids"]["archive-writer"])
    clients("firehose").delete_delivery_stream(DeliveryStreamName=info.outputs["delivery_stream_name"])
    clients("events").disable_rule(Name=info.outputs["warehouse"][stack.MERGE_RULE_OUTPUT])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = discover(config.admin_url)
        if [c["kind"] for c in state["consumers"]] == ["event-source-mapping"]:
            return
        time.sleep(0.2)
    raise RuntimeError("the runtime still runs the analytics consumers")


def stage_reconcile(config: stack.StackConfig, info: stack.StackInfo, source: str,
                    sinks_to_read: tuple[str, ...] = reconcile.SINKS) -> dict[str, Any]:
    started = time.perf_counter()
    figures, problems = reconcile.source_figures(source)
    sinks = reconcile.sink_figures(clients=stack.clients(config), outputs=info.outputs,
                                   execute=stack.warehouse_executor(config, info).execute, sinks=sinks_to_read)
    result = reconcile.reconcile(figures, sinks, problems)
    out = {name: {"invoices": len(c.figures.invoices), "lines": c.figures.lines, "revenue": f"{c.figures.revenue}",
                  "ok": c.ok, "set_aside": c.figures.set_aside} for name, c in result.sinks.items()}
    return {"ok": result.ok, "source": {"invoices": len(figures.invoices), "lines": figures.lines,
                                        "revenue": f"{figures.revenue}"},
            "sinks": out, "seconds": round(time.perf_counter() - started, 2)}


def stage_freshness(config: stack.StackConfig, info: stack.StackInfo, samples: int, timeout: float = 120.0) -> dict[str, Any]:
    """POST one invoice at a time and time it until the views show it (the schedule as it runs)."""
    from pipeline.events import InvoiceEvent, InvoiceLine

    executor = stack.warehouse_executor(config, info)
    seconds = []
    for n in range(samples):
        country = f"Freshness {int(time.time())}-{n}"
        event = InvoiceEvent(f"F{int(time.time() * 1000)}{n}", "2011-12-10T10:00:00", "99999", country,
                             (InvoiceLine(1, "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 6, Decimal("2.55")),))
        started = time.perf_counter()
        response = requests.post(f"{config.api_url}/events", data=event.to_json(), timeout=30,
                                 headers={"Content-Type": "application/json",
                                          **bearer(stack.local_token(config, producer="replay"))})
        assert response.status_code == 202, response.text
        name = country.replace("'", "''")
        while True:
            if executor.execute(f"select count(*) from mv_sales_by_country_day where country = '{name}'").scalar():
                seconds.append(round(time.perf_counter() - started, 2))
                break
            if time.perf_counter() - started > timeout:
                seconds.append(None)
                break
            time.sleep(0.1)
        time.sleep(1.3)  # start the next one at another point of the merge schedule
    done = [s for s in seconds if s is not None]
    return {"seconds": seconds, "max_s": max(done) if done else None, "missed": len(seconds) - len(done)}


def _timed(call, n: int) -> dict[str, float]:
    call()  # warm
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


TOP3_FRANCE = "select * from mv_top_products_by_country where country = 'France' order by rank limit 3"


def stage_dashboard(config: stack.StackConfig, info: stack.StackInfo, n: int, warehouse_url: str | None) -> dict[str, Any]:
    from devstack.dashboard import Dashboard

    executor = stack.warehouse_executor(config, info)
    dashboard = Dashboard(executor)
    out = {
        "top3_france_data_api": _timed(lambda: executor.execute(TOP3_FRANCE), n),
        "dashboard_country_france": _timed(lambda: dashboard.country("France"), n),
        "dashboard_overview": _timed(dashboard.overview, n),
    }
    if warehouse_url:  # PostgreSQL: also as Tableau reaches it, over the wire protocol
        import psycopg

        with psycopg.connect(warehouse_url) as connection:
            out["top3_france_postgres_wire"] = _timed(lambda: connection.execute(TOP3_FRANCE).fetchall(), n)
    top = executor.execute(TOP3_FRANCE).records()
    out["top3_france"] = [{k: str(v) for k, v in row.items() if k in ("stock_code", "description", "units", "gross_sales",
                                                                        "unique_customers", "rank")} for row in top]
    return out


def stage_query(config: stack.StackConfig, source: str, n: int, seed: int = 7) -> dict[str, Any]:
    events = list(read_invoices(source))
    rng = random.Random(seed)
    invoices = [e.invoice_no for e in rng.sample(events, min(n, len(events)))]
    customers = sorted({e.customer_id for e in events if e.customer_id})
    session = requests.Session()
    session.headers.update(bearer(stack.local_token(config, staff=True)))
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
                          KeySchema=[{"AttributeName": "invoice_no", "KeyType": "HASH"},
                                     {"AttributeName": "stock_code", "KeyType": "RANGE"}],
                          AttributeDefinitions=[{"AttributeName": "invoice_no", "AttributeType": "S"},
                                                {"AttributeName": "stock_code", "AttributeType": "S"}])
    role = iam.create_role(RoleName="seed-baseline", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }))["Role"]["Arn"]
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


def _run_report(run: dict[str, Any]) -> list[str]:
    p, r, f, d = run["pipeline"], run["reconcile"], run.get("freshness"), run.get("dashboard") or {}
    sinks = " · ".join(f"{name} {seconds:.1f}s" for name, seconds in p["sinks_complete_s"].items())
    lines = [
        f"  [{run['warehouse']}] stack up: terraform apply {run['up']['terraform_apply_s']:.1f}s (not part of end to end)",
        f"    every sink         {p['end_to_end_s']:.1f}s from the first request (replay {p['replay_s']:.1f}s)",
        f"    sinks complete     {sinks}",
        f"                       {p['lines_per_s']:,} lines/s · {p['requests']} HTTP requests · {p['kinesis']['records']:,} "
        f"Kinesis records · {p['firehose']['transform_invocations']} transformations · {p['firehose']['deliveries']} COPYs",
        f"    CPU seconds        emulator+warehouse {p['cpu_s']['emulator_and_warehouse']:.1f} · runtime+functions "
        f"{p['cpu_s']['runtime_and_functions']:.1f} · replay client {p['cpu_s']['replay_client']:.1f}",
        f"    reconcile          {'every sink equals the source' if r['ok'] else 'MISMATCH'}: "
        + " · ".join(f"{name} {s['lines']:,} lines £{money_display(s['revenue'])}" for name, s in r["sinks"].items()),
    ]
    held = p.get("precedence")
    if held:
        lines.append(f"    precedence         the others waited for {', '.join(held['first'])}: {held['holds']} holds, "
                     f"{held['held_seconds']:.1f} s in all (summed over their shard pollers)")
    if f:
        lines.append(f"    freshness          POST → views: {', '.join(str(s) for s in f['seconds'])} s (max {f['max_s']} s)")
    for name, figures in d.items():
        if isinstance(figures, dict):
            lines.append(f"    {name:<26} p50 {figures['p50_ms']} ms · p99 {figures['p99_ms']} ms (n={figures['n']})")
    return lines


def report(results: dict[str, Any]) -> str:
    q, b = results["query"], results.get("baseline")
    lines = [
        "",
        f"shopstream benchmark — {results['source']}  ({results['machine']})",
        f"  read + group only  {results['read']['lines']:,} lines → {results['read']['invoices']:,} invoices"
        f" in {results['read']['seconds']:.1f}s",
    ]
    for run in results["runs"]:
        lines += _run_report(run)
    alone = next((r for r in results["runs"] if r["warehouse"] == "none (invoice path alone)"), None)
    by_name = {r["warehouse"]: r for r in results["runs"]}
    if alone:
        by_itself = alone["pipeline"]["sinks_complete_s"]["dynamodb"]
        for name, label in (("duckdb", ""), ("duckdb, no precedence", " on an equal footing (no precedence)")):
            if name in by_name:
                with_all = by_name[name]["pipeline"]["sinks_complete_s"]["dynamodb"]
                lines.append(f"  DynamoDB sink      {with_all:.1f}s with every consumer{label} vs {by_itself:.1f}s with "
                             f"the invoice path alone (×{with_all / by_itself:.2f}, same run)")
    lines += [
        f"  GET /invoices      p50 {q['get_invoice']['p50_ms']} ms · p99 {q['get_invoice']['p99_ms']} ms (n={q['get_invoice']['n']})",
        f"  GET /customers     p50 {q['customer_history']['p50_ms']} ms · p99 {q['customer_history']['p99_ms']} ms"
        f" (n={q['customer_history']['n']})",
    ]
    if "verify" in results:
        v = results["verify"]
        lines.append(f"  every invoice      {v['checked'] - v['missing']:,}/{v['checked']:,} retrievable, "
                     f"{v['mismatched']} totals differ ({v['seconds']:.0f}s)")
    if b:
        lines += [
            f"  seed baseline      {b['rows_sent']:,} rows in {b['seconds']:.1f}s = {b['lines_per_s']} lines/s; "
            f"lost {b['lines_lost']} lines ({b['lost_pct']}%) to stock-code keys",
            f"  ratio              {results['ratio_vs_baseline']:,.0f}× the baseline's throughput",
        ]
    return "\n".join(lines)


def run_stack(args: argparse.Namespace, results: dict[str, Any], warehouse_url: str | None, *,
              extra: bool, invoice_path_only: bool = False, precedence: bool = True) -> dict[str, Any]:
    """Stages 1-6 on a fresh stack with this warehouse; with ``extra``, 7-8 too; with
    ``invoice_path_only``, 1, 3 and 4 with the analytics consumers removed."""
    config = stack.StackConfig(state_dir=Path(tempfile.mkdtemp(prefix="shopstream-bench-")),
                               emulator_port=free_port(), gateway_port=free_port(), admin_port=free_port(),
                               warehouse_url=warehouse_url, precedence=precedence)
    run: dict[str, Any] = {"warehouse": "postgresql" if warehouse_url else "duckdb"}
    if not precedence:
        run["warehouse"] += ", no precedence"
    info = stack.up(config)
    try:
        run["up"] = {"terraform_apply_s": info.terraform_s}
        if invoice_path_only:
            run["warehouse"] = "none (invoice path alone)"
            remove_analytics(config, info)
            print("• pipeline [invoice path alone]: replay --max until DynamoDB is complete")
            run["pipeline"] = stage_pipeline(config, info, args.source, args.drain_timeout)
            run["reconcile"] = stage_reconcile(config, info, args.source, ("dynamodb",))
            return run
        print(f"• pipeline [{run['warehouse']}]: replay --max until every sink is complete")
        run["pipeline"] = stage_pipeline(config, info, args.source, args.drain_timeout)
        print("• reconcile every sink")
        run["reconcile"] = stage_reconcile(config, info, args.source)
        print("• freshness: POST → views")
        run["freshness"] = stage_freshness(config, info, args.freshness)
        print("• dashboard queries")
        run["dashboard"] = stage_dashboard(config, info, args.dashboard_queries, warehouse_url)
        if extra:
            print("• query latency")
            results["query"] = stage_query(config, args.source, args.queries)
            if args.verify:
                v = verify_through_api(config.api_url, args.source, token=stack.local_token(config, staff=True))
                results["verify"] = {"checked": v.checked, "missing": len(v.missing), "mismatched": len(v.mismatched),
                                     "seconds": v.seconds}
            if args.baseline_rows:
                print(f"• seed baseline: {args.baseline_rows} rows, one request each")
                results["baseline"] = stage_baseline(config, info, args.source, args.baseline_rows, args.drain_timeout)
                results["ratio_vs_baseline"] = round(run["pipeline"]["lines_per_s"] / results["baseline"]["lines_per_s"], 1)
    finally:
        stack.down(config, quiet=True)
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="the data: a Kaggle zip, CSV, directory or glob (e.g. ../shared/data/online-retail/by-day)")
    parser.add_argument("--baseline-rows", type=int, default=2000, help="rows fed to the seed baseline (0: skip it)")
    parser.add_argument("--queries", type=int, default=2000, help="GET /invoices requests for the latency figures")
    parser.add_argument("--verify", action="store_true", help="also fetch every invoice through the API and compare it")
    parser.add_argument("--drain-timeout", type=float, default=900.0)
    parser.add_argument("--freshness", type=int, default=3, help="single invoices timed from POST to the views")
    parser.add_argument("--dashboard-queries", type=int, default=50, help="repetitions of each dashboard query")
    parser.add_argument("--no-invoice-path-yardstick", dest="invoice_path_yardstick", action="store_false",
                        help="skip the first run, with the analytics consumers removed")
    parser.add_argument("--warehouse-backends", default="duckdb,postgresql",
                        help="local warehouses to run the stack with, in order (the first also runs the query "
                             "latency and the baseline)")
    parser.add_argument("--compare-precedence", action="store_true",
                        help="also run the DuckDB stack with every consumer on an equal footing (no precedence for "
                             "the invoice writer), for the same-run ratio")
    parser.add_argument("--out", help="JSON results file (default bench/results/<time>.json)")
    args = parser.parse_args(argv)
    if not os.path.exists(args.source) and not any(c in args.source for c in "*?["):
        print(f"bench: {args.source} not found (the full dataset lives in ../shared/data/online-retail/by-day)", file=sys.stderr)
        return 2

    results: dict[str, Any] = {
        "source": args.source,
        "command": "python -m bench.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()}, {psutil.cpu_count()} cores, Python {platform.python_version()}",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "runs": [],
    }
    backends = [b.strip() for b in args.warehouse_backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in ("duckdb", "postgresql")]
    if unknown:  # said before minutes of runs, not after
        print(f"bench: unknown warehouse backend {', '.join(map(repr, unknown))} (duckdb, postgresql)", file=sys.stderr)
        return 2
    print("• read + group (no sending)")
    results["read"] = stage_read(args.source)
    if args.invoice_path_yardstick:
        results["runs"].append(run_stack(args, results, None, extra=False, invoice_path_only=True))
    for n, backend in enumerate(backends):
        if backend == "duckdb":
            results["runs"].append(run_stack(args, results, None, extra=n == 0))
        else:
            from tests.fixtures.postgres import PostgresCluster  # the tests' throwaway cluster (as root: its own user)

            cluster = PostgresCluster.start()
            try:
                url = cluster.url(cluster.create_database("shopstream_bench"))
                results["runs"].append(run_stack(args, results, url, extra=n == 0))
            finally:
                cluster.stop()
                cluster.remove()
    if args.compare_precedence:
        results["runs"].append(run_stack(args, results, None, extra=False, precedence=False))
    RESULTS.mkdir(exist_ok=True)
    out = Path(args.out) if args.out else RESULTS / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))  # before the report: a report bug must not lose a run
    print(report(results))
    print(f"\nresults: {out}")
    return 0 if all(r["pipeline"]["ok"] and r["reconcile"]["ok"] for r in results["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
