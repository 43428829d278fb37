"""``shopstream``: run the pipeline on this machine.

    shopstream up [--warehouse postgresql://…]   # emulator + terraform apply + local runtime, then return
    shopstream status                            # what runs, consumer positions, schedules
    shopstream replay data.zip --speedup 3600
    shopstream generate --seed 1 --days 30 --out gen/ | --post --rate 20   # synthetic data like the real
    shopstream sql "select count(*) from fact_invoice_lines" [--format table|json|csv]
    shopstream reconcile --data data.zip [--json]  # source vs DynamoDB vs archive vs warehouse
    shopstream backfill --from 2011-01-01 --to 2011-01-31
    shopstream dashboard [--port 8090] [--static FILE]   # the sales dashboard on 127.0.0.1, or a snapshot
    shopstream token --customer 17850 | --staff | --producer NAME   # an access token for the HTTP API
    shopstream drop FILE… [--no-wait] [--json]                         # daily files into the drop bucket
    shopstream notifications [--topic large-orders|file-outcomes|alerts] [--json]   # what SNS was sent
    shopstream down
    shopstream demo [--data PATH] [--report FILE]   # up, replay, drain, summary, down
    shopstream --version

The options every command shares (--state-dir, --emulator-port, --gateway-port,
--admin-port, --region) go before or after the command: ``shopstream --gateway-port 9090
up`` and ``shopstream up --gateway-port 9090`` are the same.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import sys
from pathlib import Path

from devstack import stack
from devstack.auth import DEFAULT_TTL_SECONDS, ENV_TOKEN, LocalIssuer


def _config(args: argparse.Namespace) -> stack.StackConfig:
    return stack.StackConfig(
        state_dir=Path(args.state_dir).resolve(),
        emulator_port=args.emulator_port,
        gateway_port=args.gateway_port,
        admin_port=args.admin_port,
        region=args.region,
        warehouse_url=getattr(args, "warehouse", None),
        auth=not getattr(args, "no_auth", False),
    )


def cmd_up(args: argparse.Namespace) -> int:
    config = _config(args)
    restarting = stack.can_restart(config)
    info = stack.up(config)
    print()
    print("shopstream is up (the local runtime restarted against the running emulator)" if restarting
          else f"shopstream is up (terraform apply {info.terraform_s:.1f}s)")
    print(f"  HTTP API   {config.api_url}   e.g. curl -H \"Authorization: Bearer $(shopstream token --staff)\" "
          f"{config.api_url}/invoices/536365" if config.auth else
          f"  HTTP API   {config.api_url}   e.g. curl {config.api_url}/invoices/536365   (no authorization: --no-auth)")
    print(f"  emulator   {config.emulator_url}   (AWS_ENDPOINT_URL={config.emulator_url} aws kinesis list-streams)")
    print(f"  runtime    {config.admin_url}/status")
    print(f"  warehouse  {stack._redacted(config.warehouse_url) if config.warehouse_url else config.warehouse_dir}"
          "   (shopstream sql \"select count(*) from fact_invoice_lines\")")
    print(f"  logs       {config.log_dir}")
    print("  next       shopstream replay data/sample/online-retail-2010-12-01_to_03.csv · shopstream down")
    return 0


def cmd_restart(args: argparse.Namespace) -> int:
    stack.restart(_config(args))
    print("the local runtime is up again; each consumer goes on from its checkpoint")
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
    for problem in state["problems"]:
        print(f"  PROBLEM   {problem}")
    for line in describe_consumers((runtime["status"] or {}).get("consumers", [])):
        print(line)
    for schedule in (runtime["status"] or {}).get("schedules", []):
        last = "never" if schedule.get("last_completed_at") is None else (
            "ok" if schedule.get("last_ok") else f"failed: {schedule.get('last_error')}")
        print(f"  schedule  {schedule.get('name')} {schedule.get('expression')}: {schedule.get('runs', 0)} runs, "
              f"last {last}")
    return 0 if state["ok"] else 1


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
    ("records_read", "records"),
    ("rows_loaded", "rows loaded"),
    ("records_processing_failed", "processing failed"),
    ("copy_failures", "failed COPYs"),
)


def cmd_replay(args: argparse.Namespace) -> int:
    from scripts.replay_kaggle import run

    if not args.endpoint and not args.stream:
        config = _config(args)
        if not stack.is_running(config):
            print("replay: the local stack is not up; run `shopstream up` first, or give --endpoint/--stream", file=sys.stderr)
            return 2
        args.endpoint = config.api_url
        if not args.token and not os.environ.get(ENV_TOKEN) and not getattr(args, "stream", None):
            issuer = LocalIssuer.load(config.state_dir)
            args.token = issuer.token(producer="replay") if issuer else None
    return run(args)


def cmd_generate(args: argparse.Namespace) -> int:
    from generator.cli import run

    if args.post and not args.endpoint:  # the local stack's API, with a producer's token of its issuer
        config = _config(args)
        if not stack.is_running(config):
            print("generate: the local stack is not up; run `shopstream up` first, or give --endpoint", file=sys.stderr)
            return 2
        args.endpoint = config.api_url
        if not args.token and not os.environ.get(ENV_TOKEN):
            issuer = LocalIssuer.load(config.state_dir)
            args.token = issuer.token(producer="generator") if issuer else None
    return run(args)


def cmd_token(args: argparse.Namespace) -> int:
    config = _config(args)
    issuer = LocalIssuer.load(config.state_dir)
    if issuer is None:
        print(f"token: no local issuer in {config.state_dir}; run `shopstream up` first", file=sys.stderr)
        return 2
    try:
        print(issuer.token(customer=args.customer, staff=args.staff, producer=args.producer, ttl=args.ttl))
    except ValueError as exc:
        print(f"token: {exc}", file=sys.stderr)
        return 2
    return 0


def _unreachable() -> tuple[type[BaseException], ...]:
    """The errors a sink or the warehouse raises when it cannot answer (imported when
    needed: the CLI starts fast)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from pipeline.errors import ShopstreamError

    return (ShopstreamError, ClientError, BotoCoreError)


def cmd_sql(args: argparse.Namespace) -> int:
    from devstack.sql import format_result
    from warehouse.data_api import StatementFailed

    config = _config(args)
    info = stack.require_running(config)

    try:
        result = stack.warehouse_executor(config, info).execute(args.query)
    except StatementFailed as exc:
        print(f"sql: {exc}", file=sys.stderr)
        return 1
    except _unreachable() as exc:
        print(f"sql: the warehouse did not answer: {exc}", file=sys.stderr)
        return 2
    print(format_result(result, args.format))
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    from devstack import reconcile
    from pipeline.errors import SourceError

    config = _config(args)
    info = stack.require_running(config)
    progress = (lambda text: None) if args.json else (lambda text: print(f"• {text}", file=sys.stderr, flush=True))
    progress(f"reading the source {args.data}")
    try:
        source, problems = reconcile.source_figures(args.data)
    except SourceError as exc:
        print(f"reconcile: {exc}", file=sys.stderr)
        return 2
    try:
        clients = stack.clients(config)
        quarantined = reconcile.quarantine_counts(clients("sqs"), info.outputs.get("quarantine_queue_url"))
        sinks = reconcile.sink_figures(clients=clients, outputs=info.outputs, quarantined=quarantined,
                                       execute=stack.warehouse_executor(config, info).execute, say=progress)
        aside = quarantined.get(reconcile.LOADER, 0)
    except _unreachable() as exc:
        print(f"reconcile: a sink could not be read: {exc}", file=sys.stderr)
        return 2
    report = reconcile.reconcile(source, sinks, problems, aside)
    print(json.dumps(report.to_dict(), indent=2) if args.json else reconcile.format_report(report))
    return 0 if report.ok else 1


def cmd_backfill(args: argparse.Namespace) -> int:
    from scripts.backfill_archive import run

    config = _config(args)
    info = stack.require_running(config)
    return run(args, bucket=info.outputs["archive_bucket_name"], stream=info.outputs["stream_name"],
               prefix=info.outputs.get("archive_prefix") or "archive/", endpoint_url=config.emulator_url,
               region=config.region)


def cmd_redrive(args: argparse.Namespace) -> int:
    from scripts.redrive import run

    config = _config(args)
    info = stack.require_running(config)
    queues = dict(info.outputs.get("failures_queue_urls") or {})
    if args.consumer:
        if args.consumer not in queues:
            print(f"redrive: no consumer {args.consumer!r}; the consumers with a failures queue: {', '.join(sorted(queues))}",
                  file=sys.stderr)
            return 2
        queues = {args.consumer: queues[args.consumer]}
    return run(queues, stream=info.outputs["stream_name"], endpoint_url=config.emulator_url, region=config.region,
               dry_run=args.dry_run, as_json=args.json)


def cmd_drop(args: argparse.Namespace) -> int:
    from batch.store import DynamoFileLedger
    from devstack import drops
    from pipeline.errors import SourceError

    config = _config(args)
    info = stack.require_running(config)
    bucket, table = info.outputs.get("drop_bucket_name"), info.outputs.get("dropped_files_table_name")
    if not bucket or not table:
        print("drop: the deployment has no drop bucket (deployed before this version? shopstream down && "
              "shopstream up)", file=sys.stderr)
        return 2
    try:
        files = drops.csv_files(args.files)
    except SourceError as exc:
        print(f"drop: {exc}", file=sys.stderr)
        return 2
    client = stack.clients(config)
    try:
        dropped = drops.upload(client("s3"), bucket, files,
                               progress=(lambda key: print(f"  dropped s3://{bucket}/{key}", file=sys.stderr))
                               if len(files) <= 20 else (lambda key: None))
    except SourceError as exc:
        print(f"drop: {exc}", file=sys.stderr)
        return 2
    print(f"drop: {len(dropped)} file(s) in s3://{bucket}/transactions/", file=sys.stderr)
    if not args.wait:
        return 0
    done = {"n": 0}

    def progress(item) -> None:
        done["n"] += 1
        if len(dropped) > 20 and (done["n"] % 25 == 0 or done["n"] == len(dropped)):
            print(f"  {done['n']}/{len(dropped)} files loaded", file=sys.stderr)

    try:
        drops.wait_for_outcomes(DynamoFileLedger(client("dynamodb"), table), dropped, timeout=args.timeout,
                                progress=progress, still_dropped=drops.in_bucket(client("s3"), bucket))
    except TimeoutError as exc:
        print(f"drop: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([{"file": d.path, "key": d.key, "sha256": d.sha256, **(d.outcome or {})} for d in dropped],
                         indent=2))
    else:
        print(drops.format_outcomes(dropped))
    return 0 if all((d.outcome or {}).get("status") == "loaded" for d in dropped) else 1


def cmd_notifications(args: argparse.Namespace) -> int:
    from devstack.notifications import TOPICS, NotificationsError, fetch, format_messages

    config = _config(args)
    info = stack.require_running(config)
    arn = info.outputs.get(TOPICS[args.topic])
    if not arn:
        print(f"notifications: the deployment has no {TOPICS[args.topic]} output (deployed before this version?)",
              file=sys.stderr)
        return 2
    try:
        messages = fetch(config.emulator_url, arn)
    except NotificationsError as exc:
        print(f"notifications: {exc}", file=sys.stderr)
        return 2
    if args.json:
        for message in messages:  # the large orders' bodies are JSON: shown as objects
            try:
                message["message"] = json.loads(message["message"])
            except (TypeError, ValueError):
                pass
        print(json.dumps({"topic": args.topic, "topic_arn": arn, "messages": messages}, indent=2))
    else:
        print(format_messages(args.topic, messages))
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from devstack.dashboard import Dashboard, DashboardError, DashboardServer, write_static

    config = _config(args)
    info = stack.require_running(config)
    dashboard = Dashboard(stack.warehouse_executor(config, info))
    if args.static:
        print("dashboard: reading the overview and every country from the warehouse…", flush=True)
        try:
            path = write_static(dashboard, args.static)
        except DashboardError as exc:
            print(f"dashboard: {exc.message}", file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"dashboard: cannot write {args.static}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        print(f"dashboard snapshot written to {path} (open it in a browser; it needs no server)")
        return 0
    try:
        server = DashboardServer(dashboard, args.port, log=print if args.verbose else None)
    except OSError as exc:
        print(f"dashboard: cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}; "
              f"choose another port with --port", file=sys.stderr)
        return 2
    print(f"dashboard on {server.url}   (JSON: {server.url}api/countries)   Ctrl-C stops it", flush=True)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)  # `kill` stops it as cleanly as Ctrl-C
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("dashboard stopped", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from devstack.demo import run_demo

    return run_demo(_config(args), data=args.data, report=args.report, keep=args.keep, verify=not args.no_verify)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (0-65535)")
    return port


def version() -> str:
    """The installed package's version (its metadata, from pyproject.toml)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("shopstream")
    except PackageNotFoundError:
        return "unknown (not installed: pip install -e .)"


def shared_options(*, defaults: bool) -> argparse.ArgumentParser:
    """The options every command takes, as a parent parser. The top-level parser carries the
    defaults; each subcommand's copy has none (``SUPPRESS``), so an option given after the
    command overrides one given before it, and one not given there leaves the top level's."""
    config = stack.StackConfig()
    parent = argparse.ArgumentParser(add_help=False)

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parent.add_argument("--state-dir", default=default(str(stack.DEFAULT_STATE_DIR)),
                        help=f"where pids, logs and local state live (default {stack.DEFAULT_STATE_DIR})")
    parent.add_argument("--emulator-port", type=int, default=default(config.emulator_port),
                        help=f"port of the AWS emulator on 127.0.0.1 (default {config.emulator_port})")
    parent.add_argument("--gateway-port", type=int, default=default(config.gateway_port),
                        help=f"port of the HTTP API on 127.0.0.1 (default {config.gateway_port})")
    parent.add_argument("--admin-port", type=int, default=default(config.admin_port),
                        help=f"port of the local runtime's admin API on 127.0.0.1 (default {config.admin_port})")
    parent.add_argument("--region", default=default(stack.DEFAULT_REGION),
                        help=f"AWS region the stack is deployed in (default {stack.DEFAULT_REGION})")
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shopstream", parents=[shared_options(defaults=True)],
                                     description="Run the shopstream pipeline locally on an embedded AWS emulator.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True)
    shared = shared_options(defaults=False)
    add_command = functools.partial(sub.add_parser, parents=[shared])

    warehouse_help = ("the local warehouse: a PostgreSQL URL such as postgresql://user@127.0.0.1:5432/shop "
                      "(default: an embedded DuckDB file under the state directory)")
    up = add_command("up", help="start the emulator, apply the Terraform, start the local runtime")
    up.add_argument("--warehouse", help=warehouse_help)
    up.add_argument("--no-auth", action="store_true",
                    help="serve the HTTP API without authorization (local experiments only; default: tokens required)")
    up.set_defaults(func=cmd_up)
    token = add_command("token", help="print an access token of the local stack's issuer (for the HTTP API)")
    who = token.add_mutually_exclusive_group(required=True)
    who.add_argument("--customer", metavar="ID", help="a customer's token: reads only this customer's invoices")
    who.add_argument("--staff", action="store_true", help="staff's token: reads every invoice and history")
    who.add_argument("--producer", metavar="NAME", help="a trusted producer's token: may POST /events")
    token.add_argument("--ttl", type=int, default=DEFAULT_TTL_SECONDS,
                       help=f"seconds the token is valid (default {DEFAULT_TTL_SECONDS})")
    token.set_defaults(func=cmd_token)
    add_command("restart", help="restart the local runtime against the running emulator, from its checkpoints"
                   ).set_defaults(func=cmd_restart)
    add_command("down", help="stop everything and forget local state").set_defaults(func=cmd_down)
    status = add_command("status", help="what runs and where the consumers are")
    status.add_argument("--json", action="store_true", help="the state as one JSON object")
    status.set_defaults(func=cmd_status)

    from scripts.replay_kaggle import build_parser as replay_parser

    replay = add_command("replay", help="replay Kaggle/UCI Online Retail data into the running stack")
    replay_parser(replay)
    replay.set_defaults(func=cmd_replay)

    from generator.cli import build_parser as generate_parser

    generate = add_command("generate", help="synthetic shop data shaped like the real set, reproducible by seed: "
                                            "daily files, or POSTed live to the stack")
    generate_parser(generate)
    generate.set_defaults(func=cmd_generate)

    sql = add_command("sql", help="run one SQL statement (Redshift's dialect) on the warehouse")
    sql.add_argument("query", help='e.g. "select * from mv_top_products_by_country where country = \'France\' '
                                   'order by rank limit 3"')
    sql.add_argument("--format", choices=("table", "json", "csv"), default="table", help="how to print the rows")
    sql.set_defaults(func=cmd_sql)

    rec = add_command("reconcile", help="compare the source with DynamoDB, the archive and the warehouse")
    rec.add_argument("--data", required=True, help="the source: Kaggle zip, CSV, directory or glob")
    rec.add_argument("--json", action="store_true", help="one JSON object with a key per sink")
    rec.set_defaults(func=cmd_reconcile)

    from scripts.backfill_archive import build_parser as backfill_parser

    backfill = add_command("backfill", help="re-inject a date range of the archive into the stream")
    backfill_parser(backfill, local=True)
    backfill.set_defaults(func=cmd_backfill)

    from scripts.redrive import build_parser as redrive_parser

    redrive = add_command("redrive", help="read the failure records of the consumers' on-failure queues, "
                                          "re-read those ranges from the stream and put their events back")
    redrive_parser(redrive, local=True)
    redrive.set_defaults(func=cmd_redrive)

    drop = add_command("drop", help="upload daily transaction files (CSV) to the drop bucket, under the "
                                    "hive-style key of their dates, and wait for each file's outcome")
    drop.add_argument("files", nargs="+", metavar="FILE", help="CSV files, directories of them, or glob patterns")
    drop.add_argument("--no-wait", dest="wait", action="store_false",
                      help="return once uploaded, without waiting for the loader's outcomes")
    drop.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for every outcome (default 1800)")
    drop.add_argument("--json", action="store_true", help="each file's outcome as JSON")
    drop.set_defaults(func=cmd_drop)

    notes = add_command("notifications", help="what the SNS topics were sent: large orders (default), file "
                                              "outcomes or alerts")
    notes.add_argument("--topic", choices=("large-orders", "file-outcomes", "alerts"), default="large-orders",
                       help="which topic (default large-orders: one message per invoice from large_order_threshold)")
    notes.add_argument("--json", action="store_true", help="every message whole, as JSON")
    notes.set_defaults(func=cmd_notifications)

    dashboard = add_command("dashboard", help="serve the sales dashboard on 127.0.0.1 (or write a static snapshot)")
    from devstack.dashboard.server import DEFAULT_PORT

    dashboard.add_argument("--port", type=_port, default=DEFAULT_PORT,
                           help=f"port on 127.0.0.1 (default {DEFAULT_PORT}; 0: any free port)")
    dashboard.add_argument("--static", metavar="FILE",
                           help="write a self-contained HTML snapshot (data embedded) to FILE instead of serving")
    dashboard.add_argument("--verbose", action="store_true", help="print each request with its time")
    dashboard.set_defaults(func=cmd_dashboard)

    demo = add_command("demo", help="up, replay, wait until drained, print the summary, down")
    demo.add_argument("--warehouse", help=warehouse_help)
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
