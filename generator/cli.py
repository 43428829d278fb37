"""``shopstream generate``: synthetic shop data, as files or live.

    shopstream generate --seed 1 --days 30 --out gen/              # 20 daily files, like by-day/
    shopstream generate --days 374 --scale 10 --out big/           # ten times the real year, file by file
    shopstream generate --days 3 --format kaggle --one-file --out k/   # one data.csv as in Kaggle's zip
    shopstream generate --days 7 --post --rate 20                  # to the running local stack, 20 invoices/s
    python -m generator --days 7 --post --endpoint https://…       # any HTTP API, with --token

Files go under ``--out`` (``./generated`` when neither it nor ``--post`` is given). With
``--post`` the invoices are sent as they are made, through the replay's delivery (batched
requests, retries, pacing by ``--rate`` or ``--speedup``); with ``--out`` as well, the files
hold what was sent. Progress goes to stderr, a summary to stdout; the exit status is 1 if
anything was not delivered.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from datetime import date
from decimal import Decimal

from generator.output import FORMAT, FORMATS, ONE_FILE, Written, write
from generator.shop import DEFAULT_START, Invoice, Options, Shop, is_open
from pipeline.events import money_display

DEFAULT_OUT = "generated"


def _start(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2010-12-01") from None


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text} must be positive")
        return value

    return parse


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="python -m generator", description=__doc__.split("\n\n")[0],
                                               formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1, help="the same seed and options give the same bytes (default 1)")
    parser.add_argument("--days", type=_positive(int), default=7,
                        help="calendar days to generate; the shop's closed days (Saturdays, holidays) have no "
                             "invoices and no file (default 7)")
    parser.add_argument("--start", type=_start, default=DEFAULT_START,
                        help=f"the first day, YYYY-MM-DD (default {DEFAULT_START.isoformat()}, as the real data)")
    parser.add_argument("--scale", type=_positive(float), default=1.0,
                        help="times the real shop's daily volume and number of customers (default 1: ~85 invoices, "
                             "~1,800 lines a day)")
    parser.add_argument("--out", metavar="DIR",
                        help=f"write the files here, one per open day (YYYY-MM-DD.csv) (default ./{DEFAULT_OUT}, "
                             "unless --post is given)")
    parser.add_argument("--format", choices=FORMATS, default="daily",
                        help="daily: like the daily files (UTF-8, 2010-12-01 08:26:00, 17850.0); kaggle: like "
                             "Kaggle's data.csv (ISO-8859-1, 12/1/2010 8:26, 17850) (default daily)")
    parser.add_argument("--one-file", action="store_true", help=f"one file {ONE_FILE} instead of one per day")
    parser.add_argument("--post", action="store_true",
                        help="POST the invoices to the HTTP API as they are made (the running local stack's, "
                             "or --endpoint)")
    parser.add_argument("--endpoint", help="with --post: the HTTP API's base URL (default: the local stack's)")
    parser.add_argument("--token", help="with --post: a producer's access token (default $SHOPSTREAM_TOKEN, or "
                                        "one from the local stack)")
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument("--rate", type=_positive(float), help="with --post: invoices per second (default: as fast as "
                                                            "the API takes them)")
    pace.add_argument("--speedup", type=_positive(float),
                      help="with --post: shop time compressed, 3600 = one shop hour per second")
    parser.add_argument("--concurrency", type=_positive(int), default=4, help="with --post: requests in flight")
    parser.add_argument("--report", metavar="FILE", help="write the summary as JSON to FILE")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def run(args: argparse.Namespace) -> int:
    if not args.out and not args.post:
        args.out = DEFAULT_OUT
    if not args.post and (args.rate or args.speedup or args.endpoint):
        print("generate: --rate, --speedup and --endpoint pace and direct --post; add --post", file=sys.stderr)
        return 2
    options = Options(seed=args.seed, days=args.days, start=args.start, scale=args.scale)
    shop = Shop(options)
    written = Written()
    stream: Iterator[Invoice] = shop.invoices()
    started = time.monotonic()
    try:
        if args.out:
            stream = write(stream, args.out, fmt=args.format, one_file=args.one_file, written=written)
        else:
            stream = written.follow(stream)
        delivery = None
        if args.post:
            from scripts.replay_kaggle import DEFAULT_ENDPOINT, deliver

            delivery = deliver((invoice.to_event() for invoice in stream), source=f"generator (seed {options.seed})",
                               endpoint=args.endpoint or DEFAULT_ENDPOINT, rate=args.rate, speedup=args.speedup,
                               concurrency=args.concurrency, progress=not args.quiet, token=args.token)
        else:
            for _ in _progress(stream, options, written, enabled=not args.quiet):
                pass
    except OSError as exc:
        print(f"generate: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    elapsed = time.monotonic() - started
    summary = _summary(options, shop, written, args, elapsed)
    print(format_summary(summary))
    if delivery is not None:
        from scripts.replay_kaggle import format_summary as delivery_summary

        print(delivery_summary(delivery))
        summary["delivery"] = delivery.to_dict()
    if args.out:
        others = _other_csvs(args.out, written.files)
        if others:
            print(f"note: {args.out} also holds {others} other CSV file(s), which a reader of the directory reads too",
                  file=sys.stderr)
    if args.report:
        with open(args.report, "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=2)
    return 0 if delivery is None or delivery.ok else 1


def _progress(stream: Iterator[Invoice], options: Options, written: Written, *, enabled: bool) -> Iterator[Invoice]:
    """The stream, with a bar of days done (and lines made) on stderr."""
    if not enabled:
        yield from stream
        return
    from tqdm import tqdm

    started = time.monotonic()
    with tqdm(total=options.days, unit=" days", dynamic_ncols=True, mininterval=0.5, file=sys.stderr) as bar:
        day = None
        for invoice in stream:
            if invoice.day != day:
                day = invoice.day
                bar.update((day - options.start).days - bar.n)
                elapsed = max(time.monotonic() - started, 1e-6)
                bar.set_postfix_str(f"{written.lines:,} lines  {written.lines / elapsed:,.0f} lines/s", refresh=False)
            yield invoice
        bar.update(options.days - bar.n)


def _summary(options: Options, shop: Shop, written: Written, args: argparse.Namespace, elapsed: float) -> dict:
    open_days = sum(1 for day in shop.days() if is_open(day))
    return {
        "seed": options.seed, "days": options.days, "start": options.start.isoformat(), "scale": options.scale,
        "open_days": open_days, "customers": shop.customers.count, "products": len(shop.catalogue.products),
        "invoices": written.invoices, "cancellations": written.cancellations, "adjustments": written.adjustments,
        "lines": written.lines, "lines_without_customer": written.lines_without_customer,
        "total": str(Decimal(written.cents).scaleb(-2)),
        "out": args.out, "format": args.format if args.out else None,
        "files": len(written.files), "bytes": written.bytes,
        "elapsed_s": round(elapsed, 3), "lines_per_s": round(written.lines / elapsed) if elapsed else None,
    }


def format_summary(s: dict) -> str:
    share = f"{s['lines_without_customer'] / s['lines']:.1%}" if s["lines"] else "-"
    lines = [
        f"generated  seed {s['seed']}, {s['days']} days from {s['start']} ({s['open_days']} open), scale {s['scale']:g}: "
        f"{s['products']:,} products, {s['customers']:,} customers",
        f"  invoices {s['invoices']:>14,}   {_count(s['cancellations'], 'cancellation')}, "
        f"{_count(s['adjustments'], 'adjustment')}",
        f"  lines    {s['lines']:>14,}   {s['lines_without_customer']:,} without a customer ({share})",
        f"  total    {'£' + money_display(s['total']):>14}   net: every line, cancellations included",
    ]
    if s["out"]:
        fmt = FORMAT[s["format"]]
        what = f"{s['files']} file" + ("s" if s["files"] != 1 else "")
        lines.append(f"  written  {what} ({fmt.name} format, {fmt.encoding}), {s['bytes'] / 1e6:,.1f} MB, in {s['out']}")
    rate = f" ({s['lines_per_s']:,} lines/s)" if s["lines_per_s"] else ""
    lines.append(f"  time     {s['elapsed_s']:.1f}s{rate}")
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _other_csvs(out: str, files: list[str]) -> int:
    ours = {os.path.basename(f) for f in files}
    try:
        return sum(1 for name in os.listdir(out) if name.lower().endswith(".csv") and name not in ours)
    except OSError:
        return 0


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))
