"""What the ingest function's invoice claims cost on the emulator, measured in one run.

Starts the patched emulator with an owners table (as ``infra/terraform/dynamodb.tf``
declares it) and claims invoices in requests of ``--batch`` invoices, two ways, in turns:

* ``one write each``: a conditional PutItem per invoice on the function's pool of 8
  threads, whatever the table holds (how every request was claimed before the owners
  were read first);
* ``claim()``: :meth:`ingest.ownership.DynamoOwnership.claim` as the function runs it
  (the recorded owners read 100 at a time, a conditional PutItem for each of the rest).

for three kinds of request: invoices no one owns yet, the same invoices resent by their
producer, and the same invoices sent by another producer (all refused).

    python -m bench.ownership_claims                      # 2,000 invoices, 250 a request
    python -m bench.ownership_claims --batch 10           # requests of 10 (the fault suite's kill case)

Prints, per way and kind: wall milliseconds per invoice, and CPU milliseconds per
invoice of the emulator and of this process (the function's side of each call).
"""
from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Callable

from bench.emulator_patches import _clients, _server_cpu_seconds
from devstack.emulator import Emulator, free_port
from ingest.ownership import DynamoOwnership

TABLE = "bench-owners"


def one_write_each(owners: DynamoOwnership, producer: str, invoice_nos: list[str]) -> set[str]:
    wanted = sorted(set(invoice_nos))
    granted = owners._pool.map(lambda n: owners._claim_one(producer, n), wanted)
    return {n for n, ok in zip(wanted, granted) if not ok}


def measure(pid: int, claim: Callable[[str, list[str]], set[str]], producer: str, requests: list[list[str]],
            count: int) -> tuple[int, tuple[float, float, float]]:
    """Every request claimed for ``producer``: how many invoices were refused, and the figures."""
    def own_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    server, client, started = _server_cpu_seconds(pid), own_cpu(), time.perf_counter()
    refused = sum(len(claim(producer, request)) for request in requests)
    wall = time.perf_counter() - started
    return refused, (wall * 1000 / count, (_server_cpu_seconds(pid) - server) * 1000 / count,
                     (own_cpu() - client) * 1000 / count)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=2000, help="invoices per way and kind (default 2000)")
    parser.add_argument("--batch", type=int, default=250, help="invoices per request (default 250, the replay's)")
    parser.add_argument("--rounds", type=int, default=3, help="turns of both ways (default 3)")
    args = parser.parse_args(argv)

    emulator = Emulator.start(free_port())
    try:
        ddb = _clients(emulator.endpoint_url)("dynamodb")
        ddb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "invoice_no", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "invoice_no", "KeyType": "HASH"}])
        owners = DynamoOwnership(ddb, TABLE)
        ways = {"one write each": lambda p, ns: one_write_each(owners, p, ns), "claim()": owners.claim}
        figures: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
        for round_no in range(args.rounds):
            for way, claim in ways.items():
                invoices = [f"{way[0]}{round_no}-{n}" for n in range(args.invoices)]
                requests = [invoices[i:i + args.batch] for i in range(0, len(invoices), args.batch)]
                for kind, producer, refused in (("new", "shop-a", 0), ("resent by its producer", "shop-a", 0),
                                                ("another producer's", "shop-b", args.invoices)):
                    got, figure = measure(emulator.process.pid, claim, producer, requests, args.invoices)
                    assert got == refused, (way, kind, got)
                    figures.setdefault((kind, way), []).append(figure)
        print(f"{args.invoices:,} invoices in requests of {args.batch}, {args.rounds} rounds (median of the rounds' "
              "figures, ms per invoice)")
        print(f"{'kind':<24} {'way':<15} {'wall':>7} {'emulator CPU':>13} {'client CPU':>11} {'wall vs one write each':>23}")
        for (kind, way), rows in figures.items():
            wall, server, client = (statistics.median(column) for column in zip(*rows))
            base = statistics.median(r[0] for r in figures[(kind, "one write each")])
            print(f"{kind:<24} {way:<15} {wall:>7.3f} {server:>13.3f} {client:>11.3f} {wall / base:>22.2f}x")
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
