"""``shopstream``: run the pipeline on this machine.

    shopstream up                     # emulator + terraform apply + local runtime, then return
    shopstream status                 # what runs, consumer positions
    shopstream replay data.zip --speedup 3600
    shopstream down
    shopstream demo [--data PATH] [--report FILE]   # up, replay, drain, summary, down
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from devstack import stack


def _config(args: argparse.Namespace) -> stack.StackConfig:
    return stack.StackConfig(
        state_dir=Path(args.state_dir).resolve(),
        emulator_port=args.emulator_port,
        gateway_port=args.gateway_port,
        admin_port=args.admin_port,
        region=args.region,
    )


def cmd_up(args: argparse.Namespace) -> int:
    config = _config(args)
    info = stack.up(config)
    print()
    print(f"shopstream is up (terraform apply {info.terraform_s:.1f}s)")
    print(f"  HTTP API   {config.api_url}   e.g. curl {config.api_url}/invoices/536365")
    print(f"  emulator   {config.emulator_url}   (AWS_ENDPOINT_URL={config.emulator_url} aws kinesis list-streams)")
    print(f"  runtime    {config.admin_url}/status")
    print(f"  logs       {config.log_dir}")
    print("  next       shopstream replay data/sample/online-retail-2010-12-01_to_03.csv · shopstream down")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    stack.down(_config(args))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    config = _config(args)
    state = stack.status(config)
    if args.json:
        print(json.dumps(state, indent=2))
        return 0
    emulator, runtime = state["emulator"], state["runtime"]
    print(f"emulator  {'up' if emulator['answering'] else 'down'}  {emulator['url']}  pid {emulator['pid'] or '-'}")
    print(f"runtime   {'up' if runtime['status'] else 'down'}  {runtime['admin_url']}  pid {runtime['pid'] or '-'}")
    for line in describe_consumers((runtime["status"] or {}).get("consumers", [])):
        print(line)
    return 0 if emulator["answering"] else 1


def describe_consumers(consumers: list[dict]) -> list[str]:
    """One line per stream consumer (its kind, name and stream), one per shard under it."""
    lines = []
    for consumer in consumers:
        stream = (consumer.get("stream_arn") or "").rsplit("/", 1)[-1] or "?"
        lines.append(f"  {consumer.get('kind')}  {consumer.get('name')} ← {stream}")
        for shard in consumer.get("shards", []):
            counts = ", ".join(f"{shard[key]:,} {label}" for key, label in _SHARD_COUNTS if key in shard)
            lines.append(f"    {shard.get('shard_id')}: {counts}, checkpoint {shard.get('checkpoint') or '-'}"
                         + (" (finished)" if shard.get("finished") else ""))
    return lines


# what a shard's status counts, per kind of consumer, in the order shown
_SHARD_COUNTS = (
    ("records_processed", "records"),
    ("batch_failures", "failed batches"),
    ("records_sent_to_destination", "sent to the on-failure destination"),
)


def cmd_replay(args: argparse.Namespace) -> int:
    from scripts.replay_kaggle import run

    if not args.endpoint and not args.stream:
        config = _config(args)
        if not stack.is_running(config):
            print("replay: the local stack is not up; run `shopstream up` first, or give --endpoint/--stream", file=sys.stderr)
            return 2
        args.endpoint = config.api_url
    return run(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from devstack.demo import run_demo

    return run_demo(_config(args), data=args.data, report=args.report, keep=args.keep, verify=not args.no_verify)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shopstream", description="Run the shopstream pipeline locally on an embedded AWS emulator.")
    parser.add_argument("--state-dir", default=str(stack.DEFAULT_STATE_DIR), help="where pids, logs and local state live")
    parser.add_argument("--emulator-port", type=int, default=4566)
    parser.add_argument("--gateway-port", type=int, default=8080)
    parser.add_argument("--admin-port", type=int, default=4599)
    parser.add_argument("--region", default=stack.DEFAULT_REGION)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("up", help="start the emulator, apply the Terraform, start the local runtime").set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop everything and forget local state").set_defaults(func=cmd_down)
    status = sub.add_parser("status", help="what runs and where the consumers are")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    from scripts.replay_kaggle import build_parser as replay_parser

    replay = sub.add_parser("replay", help="replay Kaggle/UCI Online Retail data into the running stack")
    replay_parser(replay)
    replay.set_defaults(func=cmd_replay)

    demo = sub.add_parser("demo", help="up, replay, wait until drained, print the summary, down")
    demo.add_argument("--data", help="Kaggle zip, CSV, directory or glob (default: the bundled sample)")
    demo.add_argument("--report", help="write a JSON report here")
    demo.add_argument("--keep", action="store_true", help="leave the stack up afterwards")
    demo.add_argument("--no-verify", action="store_true", help="skip fetching every invoice back through the API")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except stack.StackError as exc:
        print(f"shopstream: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
