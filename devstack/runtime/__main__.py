"""``python -m devstack.runtime``: run the local runtime until SIGTERM/SIGINT.

    python -m devstack.runtime --emulator-url http://127.0.0.1:4566 --gateway-port 8080 \\
        --admin-port 4599 --state-dir .shopstream --code-root .
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from devstack.runtime.runtime import (
    DEFAULT_ADMIN_PORT,
    DEFAULT_EMULATOR_URL,
    DEFAULT_GATEWAY_PORT,
    REPO_ROOT,
    LocalRuntime,
    RuntimeConfig,
    default_region,
)
from devstack.runtime.shards import PollerSettings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m devstack.runtime",
                                description="Run shopstream's Lambda handlers locally against the emulator.")
    p.add_argument("--emulator-url", default=DEFAULT_EMULATOR_URL, help="the emulator endpoint (default %(default)s)")
    p.add_argument("--gateway-port", type=int, default=DEFAULT_GATEWAY_PORT, help="HTTP API port (0: any free port)")
    p.add_argument("--admin-port", type=int, default=DEFAULT_ADMIN_PORT, help="admin/status port (0: any free port)")
    p.add_argument("--state-dir", default=RuntimeConfig.state_dir, help="checkpoints and function logs go under <dir>/runtime")
    p.add_argument("--code-root", default=str(REPO_ROOT), help="where handler modules are imported from")
    p.add_argument("--region", default=default_region(), help="region of the resources (default %(default)s)")
    p.add_argument("--discovery-interval", type=float, default=RuntimeConfig.discovery_interval,
                   help="seconds between reads of the emulator")
    p.add_argument("--max-workers", type=int, default=RuntimeConfig.max_workers,
                   help="concurrent workers per function (default %(default)s)")
    p.add_argument("--function-workers", action="append", default=[], metavar="NAME=N",
                   help="override --max-workers for one function (repeatable)")
    p.add_argument("--idle-poll-delay", type=float, default=PollerSettings.idle_delay,
                   help="pause after an empty GetRecords (seconds)")
    p.add_argument("--retry-delay", type=float, default=PollerSettings.retry_base_delay,
                   help="first retry backoff of a failed batch (seconds)")
    p.add_argument("--max-retry-delay", type=float, default=PollerSettings.retry_max_delay,
                   help="cap of the retry backoff (seconds)")
    p.add_argument("--schedule-period-cap", type=float, default=None, metavar="SECONDS",
                   help="run rate(…) schedules at least this often (EventBridge's minimum is a minute; "
                        "shopstream up uses 5 s so results appear within seconds)")
    p.add_argument("--first-consumer", action="append", default=[], metavar="NAME",
                   help="a stream consumer (function or delivery stream name) the others wait for while it is "
                        "behind, at most --max-hold seconds in a row (repeatable; shopstream up names the invoice "
                        "writer)")
    p.add_argument("--max-hold", type=float, default=RuntimeConfig.precedence_max_hold,
                   help="longest wait of a consumer for the --first-consumer ones (seconds)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    for noisy in ("botocore", "boto3", "urllib3", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    per_function = {}
    for item in args.function_workers:
        name, _, count = item.partition("=")
        per_function[name] = int(count)
    config = RuntimeConfig(
        emulator_url=args.emulator_url, state_dir=args.state_dir, code_root=args.code_root,
        gateway_port=args.gateway_port, admin_port=args.admin_port, region=args.region,
        discovery_interval=args.discovery_interval, max_workers=args.max_workers,
        max_workers_per_function=per_function, schedule_period_cap=args.schedule_period_cap,
        first_consumers=tuple(args.first_consumer), precedence_max_hold=args.max_hold,
        poller=PollerSettings(idle_delay=args.idle_poll_delay, retry_base_delay=args.retry_delay,
                              retry_max_delay=args.max_retry_delay),
    )
    stop = threading.Event()

    def on_signal(signum, frame) -> None:
        logger = logging.getLogger("devstack.runtime")
        if stop.is_set():  # a second signal: do not wait for in-flight invocations
            logger.warning("received %s again; exiting without waiting", signal.Signals(signum).name)
            os._exit(130)
        logger.info("received %s; stopping (send it again to exit at once)", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        runtime = LocalRuntime(config).start()
    except OSError as exc:
        logging.getLogger("devstack.runtime").error("%s", exc)
        return 1
    print(f"local runtime ready: gateway {runtime.gateway_url}  admin {runtime.admin_url}/status", flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        runtime.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
