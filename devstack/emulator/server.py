"""Entry point of the emulator process: ``python -m devstack.emulator.server --port 4566``.

Applies shopstream's patches to moto (unless ``--no-patches``, which the benchmark uses to
measure moto as released), then serves moto's WSGI application on 127.0.0.1 (threaded,
without per-request access logs)."""
from __future__ import annotations

import argparse
import logging


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="moto's server with shopstream's start-up patches")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--no-patches", action="store_true",
        help="serve moto as released, without shopstream's patches (for bench/emulator_patches.py)",
    )
    args = parser.parse_args(argv)

    if not args.no_patches:
        from devstack.emulator import patches

        patches.apply()

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import run_simple

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False, use_debugger=False)


if __name__ == "__main__":
    main()
