"""The embedded AWS emulator: moto's server on 127.0.0.1, with shopstream's start-up
patches (see :mod:`devstack.emulator.patches`), run as its own process so it has a core
of its own and outlives a restart of the local runtime. Its Redshift Data API runs on the
local warehouse, which this process owns (:mod:`devstack.emulator.data_api`)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import requests

DEFAULT_PORT = 4566  # the port LocalStack clients (localstack-client) expect


class EmulatorError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_up(endpoint_url: str, timeout: float = 0.5) -> bool:
    try:
        # the dashboard page: constant size (data.json dumps every resource and slows down as state grows)
        return requests.get(f"{endpoint_url}/moto-api/", timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def _tail(log, max_bytes: int = 4000) -> str:
    log.flush()
    log.seek(0, os.SEEK_END)
    log.seek(max(0, log.tell() - max_bytes))
    return log.read().decode("utf-8", "replace").strip()


@dataclass
class Emulator:
    """A running emulator process."""

    port: int
    process: subprocess.Popen | None
    log_path: str | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(
        cls, port: int = DEFAULT_PORT, *, log_path: str | None = None, timeout: float = 30.0, patched: bool = True,
        warehouse_url: str | None = None, warehouse_dir: str | os.PathLike[str] | None = None,
        fresh_warehouse: bool = False,
    ) -> Emulator:
        """Start the emulator on 127.0.0.1:``port``; ``patched=False`` serves moto as released.

        The local warehouse behind its Data API: ``warehouse_url`` (``postgresql://…``), or
        DuckDB in ``warehouse_dir`` (a temporary directory if None); ``fresh_warehouse``
        drops what an earlier stack left there."""
        endpoint = f"http://127.0.0.1:{port}"
        if is_up(endpoint):
            raise EmulatorError(f"something already answers on {endpoint}; stop it or choose another port")
        # without a log file, output goes to an unnamed temporary file, so that a failed
        # start can say why (e.g. a start-up patch that no longer fits moto)
        log = open(log_path, "ab") if log_path else tempfile.TemporaryFile()
        from devstack.emulator import data_api

        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env[data_api.ENV_URL] = warehouse_url or ""
        env[data_api.ENV_DIR] = str(warehouse_dir) if warehouse_dir else ""
        env[data_api.ENV_FRESH] = "1" if fresh_warehouse else "0"
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack.emulator.server", "--port", str(port)]
            + ([] if patched else ["--no-patches"]),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise EmulatorError(
                        f"the emulator exited with code {process.returncode}"
                        + (f" (log: {log_path})" if log_path else f":\n{_tail(log)}")
                    )
                if is_up(endpoint, timeout=0.2):
                    return cls(port, process, log_path)
                time.sleep(0.05)
            process.kill()
            raise EmulatorError(f"the emulator did not answer on {endpoint} within {timeout:.0f}s")
        finally:
            log.close()  # the emulator process holds its own copy

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
