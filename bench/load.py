"""Load test: concurrent POSTs and GETs through the HTTP API of a fresh local stack, with
the memory of every process measured (``python -m bench.load``).

Stages, all in one run on a stack this command starts and stops itself:

1. ``up`` (emulator, terraform apply, local runtime), then the data loaded (the replay of
   the bundled sample, or ``--data``) and drained, so the GETs ask for stored invoices.
2. baseline: the request mix over one keep-alive connection, for ``--baseline-requests``
   requests or ``--baseline-seconds``, whichever comes first: the yardstick the
   concurrent figures are divided by.
3. load: the same mix over ``--concurrency`` keep-alive connections, bounded by
   ``--requests`` and by ``--seconds`` (whichever comes first). POSTs send real invoice
   events from the data, one invoice a request (each one a rewrite of a stored invoice:
   the writes are idempotent); GETs ask ``/invoices/{no}`` and
   ``/customers/{id}/invoices`` of stored ones. Per route: requests/s, p50/p99 latency,
   answers by status.
4. rewrites: the same invoices POSTed again and again (``--rewrite-batch`` a request, in
   order, as a client re-sending its data would) until ``--rewrites`` invoices were
   rewritten or ``--rewrite-seconds`` have passed, draining every 10,000; the RSS of the
   emulator, the runtime and each function worker after each step, the growth per 10,000
   rewritten invoices, and what the emulator holds at either end (records in the stream,
   objects and bytes in each bucket, items in the table, rows in the warehouse's staging
   table), to tell where memory goes.

RSS is read from ``/proc/<pid>/status`` (VmRSS). Results: printed, and written as JSON to
bench/results/ (git-ignored); figures go into BENCHMARKS.md by hand.
"""
from __future__ import annotations

import argparse
import http.client
import itertools
import json
import platform
import random
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from devstack import stack
from devstack.auth import bearer
from devstack.emulator import free_port
from devstack.runtime.client import wait_until_drained
from pipeline.events import InvoiceEvent
from pipeline.kaggle import read_invoices

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample" / "online-retail-2010-12-01_to_03.csv"
RESULTS = ROOT / "bench" / "results"
ROUTES = ("POST /events", "GET /invoices/{invoice_no}", "GET /customers/{customer_id}/invoices")
REWRITE_STEP = 10_000


# ---- pure helpers ---------------------------------------------------------------------------


def percentile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile (0 ≤ q ≤ 1) of sorted samples, linearly interpolated between the two
    nearest ranks (what numpy calls "linear"); raises ValueError on no samples."""
    if not ordered:
        raise ValueError("no samples")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be within [0, 1], got {q}")
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(samples_ms: Iterable[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    if not ordered:
        return {"n": 0}
    return {"n": len(ordered), "p50_ms": round(percentile(ordered, 0.50), 2),
            "p99_ms": round(percentile(ordered, 0.99), 2), "max_ms": round(ordered[-1], 2)}


def growth_per(points: Sequence[tuple[float, float]], per: float) -> float | None:
    """The least-squares slope of (x, y) points, times ``per``: e.g. the RSS growth in MB
    per 10,000 rewritten invoices. None with fewer than two distinct x."""
    if len({x for x, _ in points}) < 2:
        return None
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return sxy / sxx * per


def request_mix(weights: Sequence[int]) -> list[int]:
    """One cycle of route indexes for weights like (1, 2, 1), interleaved (0, 1, 2, 1, …)
    rather than in runs, so every connection sees every route."""
    if len(weights) != len(ROUTES) or any(w < 0 for w in weights) or not any(weights):
        raise ValueError(f"give {len(ROUTES)} non-negative weights, not all zero (got {list(weights)})")
    left = list(weights)
    cycle: list[int] = []
    while any(left):
        for i, w in enumerate(left):
            if w:
                cycle.append(i)
                left[i] -= 1
    return cycle


# ---- processes and their memory -------------------------------------------------------------


def rss_mb(pid: int) -> float | None:
    """Resident set size of a process in MB (VmRSS), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _function_name(pid: int) -> str | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    for entry in environ:
        if entry.startswith(b"AWS_LAMBDA_FUNCTION_NAME="):
            return entry.split(b"=", 1)[1].decode()
    return None


def stack_pids(config: stack.StackConfig) -> dict[str, int]:
    """The emulator, the runtime and each function worker (``<function>#<n>``) by pid."""
    pids: dict[str, int] = {}
    for name in ("emulator", "runtime"):
        path = config.run_dir / f"{name}.pid"
        if path.exists():
            pids[name] = int(path.read_text())
    runtime = pids.get("runtime")
    if runtime is not None:
        counts: Counter[str] = Counter()
        for child in sorted(_children(runtime)):
            function = _function_name(child)
            if function is None:
                continue
            short = function.removeprefix("shopstream-")
            counts[short] += 1
            pids[f"{short}#{counts[short]}"] = child
    return pids


def memory(config: stack.StackConfig) -> dict[str, float]:
    """RSS in MB of every process of the stack, plus the workers' total."""
    out = {}
    for name, pid in stack_pids(config).items():
        value = rss_mb(pid)
        if value is not None:
            out[name] = round(value, 1)
    out["workers_total"] = round(sum(v for k, v in out.items() if "#" in k), 1)
    return out


# ---- what the emulator holds ----------------------------------------------------------------


def holdings(config: stack.StackConfig, info: stack.StackInfo) -> dict[str, Any]:
    """What the emulator keeps: records and bytes in the stream (from TRIM_HORIZON), objects
    and bytes per bucket, items in the invoices table, rows in the warehouse's staging."""
    clients = stack.clients(config)
    kinesis = clients("kinesis")
    stream = info.outputs["stream_name"]
    records = data_bytes = 0
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            records += len(page["Records"])
            data_bytes += sum(len(r["Data"]) for r in page["Records"])
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    s3 = clients("s3")
    buckets: dict[str, dict[str, int]] = {}
    for bucket in s3.list_buckets()["Buckets"]:
        objects = size = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
            for obj in page.get("Contents", []):
                objects += 1
                size += obj["Size"]
        buckets[bucket["Name"]] = {"objects": objects, "bytes": size}
    table = clients("dynamodb").describe_table(TableName=info.outputs["invoices_table_name"])["Table"]
    try:
        staged = stack.warehouse_executor(config, info).execute("SELECT count(*) AS n FROM stg_invoice_lines").rows[0][0]
    except Exception as exc:  # the figure is informative; a failing count must not lose the run
        staged = f"unavailable: {exc}"
    return {"stream_records": records, "stream_bytes": data_bytes, "buckets": buckets,
            "table_items": table.get("ItemCount"), "staging_rows": staged}


# ---- the load -------------------------------------------------------------------------------


@dataclass
class Workload:
    events: list[InvoiceEvent]
    customers: list[str]

    def request(self, route: int, n: int) -> tuple[str, str, bytes | None]:
        if route == 0:
            return "POST", "/events", self.events[n % len(self.events)].to_json()
        if route == 1:
            return "GET", f"/invoices/{quote(self.events[(n * 7919) % len(self.events)].invoice_no)}", None
        return "GET", f"/customers/{quote(self.customers[(n * 7919) % len(self.customers)])}/invoices?limit=20", None


@dataclass
class Tally:
    latencies: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[int, Counter] = field(default_factory=lambda: defaultdict(Counter))
    errors: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        routes = {}
        for i, route in enumerate(ROUTES):
            samples = self.latencies.get(i, [])
            routes[route] = {
                "requests": len(samples),
                "per_second": round(len(samples) / self.seconds, 1) if self.seconds else None,
                **latency_summary(samples),
                "statuses": {str(k): v for k, v in sorted(self.statuses.get(i, Counter()).items())},
            }
        total = sum(len(v) for v in self.latencies.values())
        return {"seconds": round(self.seconds, 2), "requests": total,
                "per_second": round(total / self.seconds, 1) if self.seconds else None,
                "routes": routes, "connection_errors": dict(self.errors)}


def run_load(api_url: str, workload: Workload, mix: list[int], *, connections: int, max_requests: int,
             max_seconds: float, timeout: float = 60.0, tokens: dict[str, str] | None = None) -> Tally:
    """Requests of the mix over ``connections`` keep-alive connections until ``max_requests``
    were sent or ``max_seconds`` have passed; ``tokens``: method → the access token sent with it."""
    parts = urlsplit(api_url)
    counter = itertools.count()
    tally = Tally()
    lock = threading.Lock()
    started = time.perf_counter()
    deadline = started + max_seconds

    def worker() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        local_lat: dict[int, list[float]] = defaultdict(list)
        local_status: dict[int, Counter] = defaultdict(Counter)
        local_errors: Counter = Counter()
        try:
            while time.perf_counter() < deadline:
                n = next(counter)
                if n >= max_requests:
                    break
                route = mix[n % len(mix)]
                method, path, body = workload.request(route, n // len(mix))
                headers = {"Content-Type": "application/json"} if body is not None else {}
                headers.update(bearer((tokens or {}).get(method)))
                t0 = time.perf_counter()
                try:
                    conn.request(method, path, body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException) as exc:
                    local_errors[type(exc).__name__] += 1
                    conn.close()
                    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
                    continue
                local_lat[route].append((time.perf_counter() - t0) * 1000)
                local_status[route][response.status] += 1
        finally:
            conn.close()
            with lock:
                for route, samples in local_lat.items():
                    tally.latencies[route].extend(samples)
                for route, counts in local_status.items():
                    tally.statuses[route].update(counts)
                tally.errors.update(local_errors)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tally.seconds = time.perf_counter() - started
    return tally


def post_batches(api_url: str, events: Sequence[InvoiceEvent], count: int, batch: int, deadline: float,
                 connections: int = 2, token: str | None = None) -> tuple[int, Counter]:
    """POST ``count`` invoices (cycling through ``events``) ``batch`` a request; the invoices
    sent and the answers by status."""
    parts = urlsplit(api_url)
    bodies = [b"[" + b",".join(e.to_json() for e in events[i:i + batch]) + b"]" for i in range(0, len(events), batch)]
    sizes = [len(events[i:i + batch]) for i in range(0, len(events), batch)]
    counter = itertools.count()
    sent = [0]
    statuses: Counter = Counter()
    lock = threading.Lock()

    def worker() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        try:
            while time.perf_counter() < deadline:
                with lock:
                    if sent[0] >= count:
                        return
                    n = next(counter) % len(bodies)
                    sent[0] += sizes[n]
                conn.request("POST", "/events", body=bodies[n], headers={"Content-Type": "application/json", **bearer(token)})
                response = conn.getresponse()
                response.read()
                with lock:
                    statuses[response.status] += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sent[0], statuses


def drain(config: stack.StackConfig, timeout: float = 600.0) -> float:
    started = time.perf_counter()
    wait_until_drained(config.admin_url, since=time.time(), timeout=timeout)
    return round(time.perf_counter() - started, 2)


def stage_rewrites(config: stack.StackConfig, info: stack.StackInfo, events: list[InvoiceEvent], *, total: int,
                   batch: int, max_seconds: float) -> dict[str, Any]:
    started = time.perf_counter()
    deadline = started + max_seconds
    before = holdings(config, info)
    points = [{"rewritten": 0, "memory": memory(config)}]
    done = 0
    statuses: Counter = Counter()
    while done < total and time.perf_counter() < deadline:
        step = min(REWRITE_STEP, total - done)
        sent, answered = post_batches(config.api_url, events, step, batch, deadline,
                                      token=stack.local_token(config, producer="replay"))
        statuses.update(answered)
        done += sent
        drained_s = drain(config)
        points.append({"rewritten": done, "memory": memory(config), "drain_s": drained_s,
                       "elapsed_s": round(time.perf_counter() - started, 1)})
        print(f"  rewritten {done:>7,}  emulator {points[-1]['memory'].get('emulator')} MB  "
              f"runtime {points[-1]['memory'].get('runtime')} MB  workers {points[-1]['memory']['workers_total']} MB")
        if sent < step:
            break
    after = holdings(config, info)
    growth = {name: growth_per([(p["rewritten"], p["memory"][name]) for p in points if name in p["memory"]], REWRITE_STEP)
              for name in points[-1]["memory"]}
    return {"rewritten": done, "batch": batch, "seconds": round(time.perf_counter() - started, 1),
            "statuses": {str(k): v for k, v in sorted(statuses.items())}, "points": points,
            "growth_mb_per_10k": {k: round(v, 1) for k, v in growth.items() if v is not None},
            "holdings_before": before, "holdings_after": after}


# ---- report ---------------------------------------------------------------------------------


def _route_table(load: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    lines = [f"  {'route':<40} {'req/s':>8} {'× base':>7} {'p50 ms':>8} {'p99 ms':>8}  statuses"]
    for route in ROUTES:
        r, b = load["routes"][route], baseline["routes"][route]
        ratio = f"{r['per_second'] / b['per_second']:.2f}" if r.get("per_second") and b.get("per_second") else "-"
        lines.append(f"  {route:<40} {r.get('per_second') or 0:>8.1f} {ratio:>7} {r.get('p50_ms', 0):>8.2f} "
                     f"{r.get('p99_ms', 0):>8.2f}  {r['statuses']}")
    return lines


def report(results: dict[str, Any]) -> str:
    base, load = results["baseline"], results["load"]
    lines = [f"load test ({results['machine']}, {results['started_at']})",
             f"  data: {results['data']} ({results['invoices']:,} invoices, {results['customers']:,} customers); "
             f"stack up {results['up_s']} s",
             f"baseline: 1 connection, {base['requests']:,} requests in {base['seconds']} s ({base['per_second']} req/s)",
             *_route_table(base, base),
             f"load: {results['concurrency']} connections, {load['requests']:,} requests in {load['seconds']} s "
             f"({load['per_second']} req/s, ×{load['per_second'] / base['per_second']:.2f} the baseline); "
             f"connection errors {load['connection_errors'] or 0}",
             *_route_table(load, base),
             "memory (RSS, MB)  " + "  ".join(f"{k}: {results['memory_loaded'].get(k)} → {results['memory_after_load'].get(k)}"
                                             for k in ("emulator", "runtime", "workers_total"))]
    rw = results.get("rewrites")
    if rw:
        lines.append(f"rewrites: {rw['rewritten']:,} invoices re-POSTed ({rw['batch']} a request) in {rw['seconds']} s; "
                     f"answers {rw['statuses']}")
        lines.append("  growth per 10k rewritten invoices (MB): " + ", ".join(f"{k} {v:+.1f}" for k, v in rw["growth_mb_per_10k"].items()))
        b, a = rw["holdings_before"], rw["holdings_after"]
        lines.append(f"  stream: {b['stream_records']:,} → {a['stream_records']:,} records, "
                     f"{b['stream_bytes'] / 1e6:.1f} → {a['stream_bytes'] / 1e6:.1f} MB")
        for name in a["buckets"]:
            bb, ab = b["buckets"].get(name, {"objects": 0, "bytes": 0}), a["buckets"][name]
            lines.append(f"  s3 {name}: {bb['objects']:,} → {ab['objects']:,} objects, "
                         f"{bb['bytes'] / 1e6:.1f} → {ab['bytes'] / 1e6:.1f} MB")
        lines.append(f"  table items {b['table_items']} → {a['table_items']}; staging rows {b['staging_rows']} → {a['staging_rows']}")
    return "\n".join(lines)


# ---- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(SAMPLE),
                        help="invoices to load and send: a Kaggle zip, CSV, directory or glob (default: the bundled sample)")
    parser.add_argument("--requests", type=int, default=20_000, help="at most this many requests in the load stage")
    parser.add_argument("--seconds", type=float, default=120.0, help="and at most this long")
    parser.add_argument("--concurrency", type=int, default=8, help="connections in the load stage")
    parser.add_argument("--mix", default="1,2,1",
                        help="weights of POST /events, GET /invoices/{no}, GET /customers/{id}/invoices")
    parser.add_argument("--baseline-requests", type=int, default=1_500)
    parser.add_argument("--baseline-seconds", type=float, default=30.0)
    parser.add_argument("--rewrites", type=int, default=40_000,
                        help="invoices re-POSTed in the memory stage (0: skip it)")
    parser.add_argument("--rewrite-batch", type=int, default=25, help="invoices a request in the memory stage")
    parser.add_argument("--rewrite-seconds", type=float, default=300.0)
    parser.add_argument("--invoice-path-only", action="store_true",
                        help="remove the archive writer, Firehose and the merge right after up (the invoice path alone)")
    parser.add_argument("--out", help="JSON results file (default bench/results/load-<time>.json)")
    args = parser.parse_args(argv)
    mix = request_mix([int(w) for w in args.mix.split(",")])

    print(f"• reading {args.data}")
    events = list(read_invoices(args.data))
    customers = sorted({e.customer_id for e in events if e.customer_id})
    random.Random(7).shuffle(events)  # POSTs and GETs spread over the data, the same order every run
    workload = Workload(events, customers)
    results: dict[str, Any] = {
        "command": "python -m bench.load " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()}, {_cores()} cores, Python {platform.python_version()}",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "data": args.data, "invoices": len(events),
        "customers": len(customers), "concurrency": args.concurrency, "mix": args.mix,
        "invoice_path_only": args.invoice_path_only,
    }
    with tempfile.TemporaryDirectory(prefix="shopstream-load-") as state:
        config = stack.StackConfig(state_dir=Path(state), emulator_port=free_port(), gateway_port=free_port(),
                                   admin_port=free_port())
        try:
            print("• stack up")
            started = time.perf_counter()
            info = stack.up(config, say=lambda line: None)
            results["up_s"] = round(time.perf_counter() - started, 1)
            if args.invoice_path_only:
                from bench.run import remove_analytics

                remove_analytics(config, info)
            results["memory_up"] = memory(config)
            print(f"• loading {len(events):,} invoices")
            from scripts.replay_kaggle import replay

            stats = replay(args.data, endpoint=config.api_url, progress=False,
                           token=stack.local_token(config, producer="replay"))
            tokens = {"POST": stack.local_token(config, producer="replay"), "GET": stack.local_token(config, staff=True)}
            if not stats.ok:
                raise SystemExit(f"bench: the load was not clean: {stats.first_problems}")
            results["load_drain_s"] = drain(config)
            results["memory_loaded"] = memory(config)
            print("• baseline (1 connection)")
            results["baseline"] = run_load(config.api_url, workload, mix, connections=1,
                                           max_requests=args.baseline_requests, max_seconds=args.baseline_seconds,
                                           tokens=tokens).summary()
            print(f"• load ({args.concurrency} connections, ≤{args.requests:,} requests, ≤{args.seconds:.0f} s)")
            results["load"] = run_load(config.api_url, workload, mix, connections=args.concurrency,
                                       max_requests=args.requests, max_seconds=args.seconds, tokens=tokens).summary()
            results["load_drain_s"] = drain(config)
            results["memory_after_load"] = memory(config)
            if args.rewrites:
                print(f"• rewrites (≤{args.rewrites:,} invoices, ≤{args.rewrite_seconds:.0f} s)")
                results["rewrites"] = stage_rewrites(config, info, events, total=args.rewrites, batch=args.rewrite_batch,
                                                     max_seconds=args.rewrite_seconds)
        finally:
            stack.down(config, quiet=True)
    RESULTS.mkdir(exist_ok=True)
    out = Path(args.out) if args.out else RESULTS / f"load-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))  # before the report: a report bug must not lose a run
    print(report(results))
    print(f"\nresults: {out}")
    return 0


def _cores() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    sys.exit(main())
