"""What the emulator's start-up patches to moto buy, measured in one run.

Starts the emulator twice, as released (``--no-patches``) and patched, and on each:

* the request overhead: cheap requests per second (DescribeTable);
* the Kinesis put rate as a shard fills up (PutRecords of 500 records, per step of
  ``--step`` records), then the latency of a GetRecords near the end of the full shard;
* the latency of Query on a table of ``--items`` items: by invoice number (the table's
  hash key) and by customer (the global secondary index), as the query API does.

    python -m bench.emulator_patches                       # 50k records, 100k items
    python -m bench.emulator_patches --records 20000 --items 20000   # a quicker look

Prints one table with both columns and the patched/unpatched ratio (higher is better for
rates, lower for latencies).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import boto3
from botocore.config import Config

from devstack.emulator import Emulator, free_port

TABLE = "bench-invoices"
INDEX = "customer-invoices"
CUSTOMERS = 4000


@dataclass
class Results:
    label: str
    rates: dict[str, float] = field(default_factory=dict)  # higher is better
    latencies: dict[str, float] = field(default_factory=dict)  # seconds, lower is better


def _clients(endpoint: str):
    config = Config(retries={"mode": "standard", "max_attempts": 2}, read_timeout=600, max_pool_connections=8)

    def make(service: str):
        return boto3.client(service, endpoint_url=endpoint, region_name="eu-west-1",
                            aws_access_key_id="test", aws_secret_access_key="test", config=config)

    return make


def _server_cpu_seconds(pid: int) -> float:
    """CPU time the emulator process has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _median_seconds(call, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_requests(make, results: Results, pid: int, count: int = 500) -> None:
    ddb = make("dynamodb")
    ddb.create_table(TableName="bench-overhead", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}])
    cpu, started = _server_cpu_seconds(pid), time.perf_counter()
    for _ in range(count):
        ddb.describe_table(TableName="bench-overhead")
    results.rates["DescribeTable requests/s (one client)"] = count / (time.perf_counter() - started)
    results.latencies["emulator CPU per DescribeTable (s)"] = (_server_cpu_seconds(pid) - cpu) / count


def bench_kinesis(make, results: Results, total: int, step: int) -> None:
    kinesis = make("kinesis")
    kinesis.create_stream(StreamName="bench", ShardCount=1)
    payload = b"x" * 200
    batch = [{"Data": payload, "PartitionKey": f"pk-{i}"} for i in range(500)]
    done, last_sequence = 0, "0"
    while done < total:
        started, in_step = time.perf_counter(), 0
        while in_step < step:
            response = kinesis.put_records(StreamName="bench", Records=batch)
            assert response["FailedRecordCount"] == 0
            last_sequence = response["Records"][-1]["SequenceNumber"]
            in_step += len(batch)
        results.rates[f"PutRecords records/s, shard at {done // 1000}k-{(done + in_step) // 1000}k"] = (
            in_step / (time.perf_counter() - started))
        done += in_step
    near_end = str(int(last_sequence) - 100)

    def read_tail() -> None:
        iterator = kinesis.get_shard_iterator(StreamName="bench", ShardId="shardId-000000000000",
                                              ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                                              StartingSequenceNumber=near_end)["ShardIterator"]
        assert len(kinesis.get_records(ShardIterator=iterator, Limit=100)["Records"]) == 100

    results.latencies[f"GetRecords of the last 100 of {done // 1000}k (s)"] = _median_seconds(read_tail, 5)


def bench_dynamodb(make, results: Results, items: int, *, repeat: int) -> None:
    ddb = make("dynamodb")
    ddb.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in
                              (("invoice_no", "S"), ("part", "N"), ("customer_id", "S"), ("invoice_sort", "S"))],
        KeySchema=[{"AttributeName": "invoice_no", "KeyType": "HASH"}, {"AttributeName": "part", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[{
            "IndexName": INDEX,
            "KeySchema": [{"AttributeName": "customer_id", "KeyType": "HASH"},
                          {"AttributeName": "invoice_sort", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["total", "country"]},
        }],
    )

    def item(n: int) -> dict:
        return {"invoice_no": {"S": f"{n:07d}"}, "part": {"N": "0"}, "customer_id": {"S": f"{n % CUSTOMERS:05d}"},
                "invoice_sort": {"S": f"2011-{1 + n % 12:02d}-{1 + n % 28:02d}#{n:07d}"},
                "total": {"N": f"{n % 997}.25"}, "country": {"S": "United Kingdom"}, "lines": {"B": b"\x78" * 64}}

    def load(start: int) -> None:
        client = make("dynamodb")
        for base in range(start, min(start + 2500, items), 25):
            requests = [{"PutRequest": {"Item": item(n)}} for n in range(base, min(base + 25, items))]
            while requests:
                requests = client.batch_write_item(RequestItems={TABLE: requests}).get("UnprocessedItems", {}).get(TABLE, [])

    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(load, range(0, items, 2500)))
    results.rates[f"BatchWriteItem items/s (loading {items // 1000}k)"] = items / (time.perf_counter() - started)

    def by_invoice() -> None:
        found = ddb.query(TableName=TABLE, KeyConditionExpression="invoice_no = :n",
                          ExpressionAttributeValues={":n": {"S": f"{items // 2:07d}"}})
        assert found["Count"] == 1

    def by_customer() -> None:
        found = ddb.query(TableName=TABLE, IndexName=INDEX, KeyConditionExpression="customer_id = :c",
                          ScanIndexForward=False, Limit=20, ExpressionAttributeValues={":c": {"S": "00042"}})
        assert found["Count"] == min(20, len(range(42, items, CUSTOMERS)))

    results.latencies[f"Query by invoice_no, {items // 1000}k items (s)"] = _median_seconds(by_invoice, repeat)
    results.latencies[f"Query {INDEX} newest 20, {items // 1000}k items (s)"] = _median_seconds(by_customer, repeat)


def measure(patched: bool, args: argparse.Namespace) -> Results:
    label = "patched" if patched else "unpatched"
    emulator = Emulator.start(free_port(), patched=patched)
    results = Results(label)
    try:
        make = _clients(emulator.endpoint_url)
        print(f"[{label}] request overhead …", flush=True)
        bench_requests(make, results, emulator.process.pid)
        print(f"[{label}] Kinesis: {args.records:,} records …", flush=True)
        bench_kinesis(make, results, args.records, args.step)
        print(f"[{label}] DynamoDB: {args.items:,} items …", flush=True)
        bench_dynamodb(make, results, args.items, repeat=5 if patched else args.unpatched_queries)
    finally:
        emulator.stop()
    return results


def report(before: Results, after: Results) -> None:
    width = max(len(k) for k in [*before.rates, *before.latencies]) + 2
    print(f"\n{'':<{width}}{'unpatched':>12}{'patched':>12}{'ratio':>10}")
    for key, value in before.rates.items():
        print(f"{key:<{width}}{value:>12,.0f}{after.rates[key]:>12,.0f}{after.rates[key] / value:>9.1f}x")
    for key, value in before.latencies.items():
        speedup = value / after.latencies[key]
        print(f"{key:<{width}}{value:>12.4f}{after.latencies[key]:>12.4f}{speedup:>8.1f}x less")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=50_000, help="records put into one Kinesis shard")
    parser.add_argument("--step", type=int, default=10_000, help="records per measured put step")
    parser.add_argument("--items", type=int, default=100_000, help="items in the DynamoDB table")
    parser.add_argument("--unpatched-queries", type=int, default=3,
                        help="queries timed on unpatched moto (each scans and sorts the whole table)")
    args = parser.parse_args(argv)
    before = measure(False, args)
    after = measure(True, args)
    report(before, after)


if __name__ == "__main__":
    main()
