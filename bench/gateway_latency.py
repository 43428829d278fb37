"""Latency the local runtime adds: a trivial handler called directly, through a worker
process (the IPC channel), and through the HTTP gateway (uvicorn + httptools, keep-alive
client), measured in the same run; p50/p99 and the ratios between them. Also the round
trip of large events through the worker channel.

    python bench/gateway_latency.py                 # starts a private emulator
    python bench/gateway_latency.py --requests 5000 --max-seconds 60 --json out.json

Bounded: at most ``--requests`` calls per path and ``--max-seconds`` overall.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HANDLER = "bench.gateway_latency.trivial_handler"


def trivial_handler(event, context):
    """What the workers run: answers at once (imported by the worker from this file)."""
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": '{"ok":true}'}


def echo_size_handler(event, context):
    return {"n": len(event.get("blob", ""))}


def percentiles(samples_s: list[float]) -> dict:
    ordered = sorted(samples_s)
    if not ordered:
        return {"n": 0}

    def at(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(p * (len(ordered) - 1))))] * 1000

    return {"n": len(ordered), "p50_ms": at(0.50), "p99_ms": at(0.99), "mean_ms": statistics.fmean(ordered) * 1000}


def timed(fn, count: int, deadline: float, warmup: int = 50) -> list[float]:
    for _ in range(min(warmup, count)):
        fn()
    samples = []
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="calls per path (default %(default)s)")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="overall time bound (default %(default)s)")
    parser.add_argument("--emulator-url", help="use a running emulator instead of starting one")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.max_seconds
    per_path = max(1, args.requests)

    sys.path.insert(0, str(ROOT))
    import http.client
    import logging

    import boto3

    from devstack.emulator import Emulator, free_port
    from devstack.runtime.runtime import LocalRuntime

    logging.basicConfig(level=logging.WARNING)
    emulator = None if args.emulator_url else Emulator.start(free_port())
    endpoint = args.emulator_url or emulator.endpoint_url
    region = "eu-west-3"
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=region)
    lam = session.client("lambda", endpoint_url=endpoint)
    gw = session.client("apigatewayv2", endpoint_url=endpoint)
    iam = session.client("iam", endpoint_url=endpoint)
    results: dict = {}
    runtime = None
    try:
        role = iam.create_role(RoleName=f"bench-{int(time.time())}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        import io
        import zipfile

        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("placeholder.py", "")
        names = {}
        for key, handler in (("trivial", HANDLER), ("sized", "bench.gateway_latency.echo_size_handler")):
            names[key] = f"bench-{key}-{int(time.time() * 1000) % 10**8}"
            fn = lam.create_function(FunctionName=names[key], Runtime="python3.11", Role=role, Handler=handler,
                                     Code={"ZipFile": buf.getvalue()}, Timeout=30, MemorySize=256)
            if key == "trivial":
                api_id = gw.create_api(Name="bench", ProtocolType="HTTP")["ApiId"]
                integration = gw.create_integration(ApiId=api_id, IntegrationType="AWS_PROXY",
                                                    IntegrationUri=fn["FunctionArn"], PayloadFormatVersion="2.0")
                gw.create_route(ApiId=api_id, RouteKey="GET /ping", Target=f"integrations/{integration['IntegrationId']}")
                gw.create_stage(ApiId=api_id, StageName="$default")
        state = tempfile.mkdtemp(prefix="bench-runtime-")
        runtime = LocalRuntime(emulator_url=endpoint, state_dir=state, code_root=ROOT, gateway_port=0, admin_port=0,
                               region=region).start()

        event = {"version": "2.0", "routeKey": "GET /ping", "rawPath": "/ping", "headers": {}}
        direct = timed(lambda: trivial_handler(event, None), per_path, deadline)
        payload = json.dumps(event).encode()
        ipc = timed(lambda: runtime.invoker.invoke(names["trivial"], payload), per_path, deadline)
        host, port = runtime.gateway_url.rsplit("//", 1)[1].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)

        def through_gateway() -> None:
            conn.request("GET", "/ping")
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"gateway answered {response.status}: {body[:200]!r}")

        gateway = timed(through_gateway, per_path, deadline)
        conn.close()
        results["direct"] = percentiles(direct)
        results["worker_ipc"] = percentiles(ipc)
        results["gateway_http"] = percentiles(gateway)
        for size_mb in (1, 5):
            blob = json.dumps({"blob": "x" * (size_mb * 1024 * 1024)}).encode()
            samples = timed(lambda blob=blob: runtime.invoker.invoke(names["sized"], blob), 10, deadline, warmup=2)
            results[f"worker_ipc_{size_mb}mb_event"] = percentiles(samples)
        d50, d99 = results["direct"]["p50_ms"], results["direct"]["p99_ms"]
        results["ratios"] = {
            "gateway_vs_direct_p50": results["gateway_http"]["p50_ms"] / d50,
            "gateway_vs_direct_p99": results["gateway_http"]["p99_ms"] / d99,
            "ipc_vs_direct_p50": results["worker_ipc"]["p50_ms"] / d50,
            "gateway_vs_ipc_p50": results["gateway_http"]["p50_ms"] / results["worker_ipc"]["p50_ms"],
        }
        results["gateway_overhead_ms_p50"] = results["gateway_http"]["p50_ms"] - d50
    finally:
        if runtime is not None:
            runtime.stop()
        if emulator is not None:
            emulator.stop()

    print(f"{'path':28} {'n':>6} {'p50 ms':>9} {'p99 ms':>9} {'mean ms':>9}")
    for key in ("direct", "worker_ipc", "gateway_http", "worker_ipc_1mb_event", "worker_ipc_5mb_event"):
        r = results.get(key, {})
        if r.get("n"):
            print(f"{key:28} {r['n']:>6} {r['p50_ms']:>9.4f} {r['p99_ms']:>9.4f} {r['mean_ms']:>9.4f}")
    ratios = results.get("ratios", {})
    print("ratios: " + ", ".join(f"{k}={v:.1f}x" for k, v in ratios.items()))
    print(f"gateway adds {results.get('gateway_overhead_ms_p50', float('nan')):.3f} ms at p50 over a direct call "
          "(HTTP parse + payload 2.0 event + worker round trip + response mapping)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
