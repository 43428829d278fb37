"""Entry point of the emulator process: ``python -m devstack.emulator.server --port 4566``.

Applies shopstream's patches to moto (unless ``--no-patches``, which the benchmark uses to
measure moto as released), then serves moto's WSGI application on 127.0.0.1 (threaded,
without per-request access logs), behind the fault injector (``faults.py``: inert until a
rule is installed on ``/_shopstream/faults``), with what SNS topics were sent readable on
``/_shopstream/sns/published`` (``published.py``)."""
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
    from devstack.emulator.published import PublishedMessages

    app = SlowRequestLog(PublishedMessages(FaultInjector(DomainDispatcherApplication(create_backend_app))))
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False, use_debugger=False)


class SlowRequestLog:
    """Logs each request slower than ``seconds`` (method, path, the action, the time taken),
    and, while a request is still running after ``stuck_seconds``, once, where its thread
    is (the stack): no access log, but a request the emulator took long over — or never
    finished — is on record."""

    def __init__(self, app, seconds: float = 5.0, stuck_seconds: float = 30.0) -> None:
        import threading

        self.app, self.seconds, self.stuck_seconds = app, seconds, stuck_seconds
        self.log = logging.getLogger("devstack.emulator")
        self.in_flight: dict[int, tuple[float, str]] = {}
        self.lock = threading.Lock()
        threading.Thread(target=self._watch, name="stuck-request-watch", daemon=True).start()

    @staticmethod
    def describe(environ) -> str:
        action = environ.get("HTTP_X_AMZ_TARGET") or environ.get("QUERY_STRING", "")[:80]
        return (f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')} {action} "
                f"(body {environ.get('CONTENT_LENGTH') or '-'} bytes)")

    def __call__(self, environ, start_response):
        import threading
        import time

        started = time.monotonic()
        ident = threading.get_ident()
        with self.lock:
            self.in_flight[ident] = (started, self.describe(environ))
        try:
            return self.app(environ, start_response)
        finally:
            with self.lock:
                self.in_flight.pop(ident, None)
            took = time.monotonic() - started
            if took > self.seconds:
                self.log.warning("slow request: %s took %.1fs", self.describe(environ), took)

    def _watch(self) -> None:
        import sys
        import time
        import traceback

        reported: set[tuple[int, float]] = set()
        while True:
            time.sleep(5.0)
            now = time.monotonic()
            with self.lock:
                stuck = [(ident, started, what) for ident, (started, what) in self.in_flight.items()
                         if now - started > self.stuck_seconds and (ident, started) not in reported]
            frames = sys._current_frames()
            for ident, started, what in stuck:
                reported.add((ident, started))
                stack = "".join(traceback.format_stack(frames[ident])) if ident in frames else "(thread gone)\n"
                self.log.warning("request still running after %.0fs: %s; its thread is at:\n%s", now - started, what,
                                 stack.rstrip())


if __name__ == "__main__":
    main()
