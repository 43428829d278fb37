"""Entry point of the emulator process: ``python -m devstack.emulator.server --port 4566``.

Applies shopstream's patches to moto, then serves moto's WSGI application on 127.0.0.1
(threaded, without per-request access logs)."""
from __future__ import annotations

import argparse
import logging


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="moto's server with shopstream's start-up patches")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)

    from devstack.emulator import patches

    patches.apply()

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import run_simple

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False, use_debugger=False)


if __name__ == "__main__":
    main()
