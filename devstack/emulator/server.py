"""Entry point of the emulator process: ``python -m devstack.emulator.server --port 4566``.

Applies shopstream's patches to moto (unless ``--no-patches``, which the benchmark uses to
measure moto as released), then serves moto's WSGI application on 127.0.0.1 (threaded,
without per-request access logs), behind the fault injector (``faults.py``: inert until a
rule is installed on ``/_shopstream/faults``)."""
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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    from devstack.emulator.faults import FaultInjector

    app = SlowRequestLog(FaultInjector(DomainDispatcherApplication(create_backend_app)))
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False, use_debugger=False)


class SlowRequestLog:
    """Logs each request slower than ``seconds`` (method, path, the action, the time taken):
    no access log, but a request the emulator took long over is on record."""

    def __init__(self, app, seconds: float = 5.0) -> None:
        self.app, self.seconds = app, seconds
        self.log = logging.getLogger("devstack.emulator")

    def __call__(self, environ, start_response):
        import time

        started = time.monotonic()
        try:
            return self.app(environ, start_response)
        finally:
            took = time.monotonic() - started
            if took > self.seconds:
                action = environ.get("HTTP_X_AMZ_TARGET") or environ.get("QUERY_STRING", "")[:80]
                self.log.warning("slow request: %s %s %s took %.1fs (body %s bytes)", environ.get("REQUEST_METHOD"),
                                 environ.get("PATH_INFO"), action, took, environ.get("CONTENT_LENGTH") or "-")


if __name__ == "__main__":
    main()
