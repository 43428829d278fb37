"""``python -m devstack.runtime`` as a process, and the runtime across an emulator restart."""
from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from devstack.emulator import Emulator, free_port
from devstack.runtime import client
from tests.fixtures.aws import REGION, Aws, read_jsonl, wait_for
from tests.fixtures.runtime_fixtures import REPO_ROOT

pytestmark = pytest.mark.emulator


def _read_lines(stream, lines: queue.Queue) -> None:
    for line in iter(stream.readline, ""):
        lines.put(line)


def test_the_command_serves_until_sigterm_then_stops_its_workers(aws, emulator, tmp_path):
    # GIVEN an HTTP API and the runtime started as the stack starts it
    fn = aws.function("tests.fixtures.handlers.echo")
    aws.http_api({"GET /who": fn["FunctionArn"]})
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.runtime", "--emulator-url", emulator.endpoint_url, "--gateway-port", "0",
         "--admin-port", "0", "--state-dir", str(tmp_path / "state"), "--code-root", str(REPO_ROOT),
         "--region", REGION],
        stdout=subprocess.PIPE, stderr=open(tmp_path / "runtime.log", "w"), stdin=subprocess.DEVNULL, text=True,
        cwd=str(REPO_ROOT))
    try:
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
        ready = lines.get(timeout=30)
        assert ready.startswith("local runtime ready:"), ready
        gateway = ready.split("gateway ", 1)[1].split()[0]
        admin = ready.split("admin ", 1)[1].split()[0].removesuffix("/status")
        assert client.health(admin)
        # WHEN a request cold-starts a worker, then the process gets SIGTERM
        answer = requests.get(f"{gateway}/who", timeout=30)
        assert answer.status_code == 200
        worker_pid = answer.json()["pid"]
        process.send_signal(signal.SIGTERM)
        # THEN it exits 0, saying so, and its worker is gone too
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "local runtime stopped" in (tmp_path / "runtime.log").read_text()
    wait_for(lambda: _gone(worker_pid), timeout=10, message=f"worker {worker_pid} to exit")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie of an already-reaped parent counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def _stream_with_consumer(resources: Aws, received) -> tuple[str, str]:
    fn = resources.function("tests.fixtures.handlers.kinesis_recorder", name="restart-consumer",
                            env={"RECORD_FILE": str(received)})
    stream = resources.stream(shards=1)
    resources.mapping(fn["FunctionName"], stream, BatchSize=10)
    return fn["FunctionName"], stream


def test_the_runtime_rides_out_an_emulator_restart(start_runtime, tmp_path):
    # GIVEN a runtime consuming a stream of a private emulator
    port = free_port()
    received = tmp_path / "received.jsonl"
    first = Emulator.start(port)
    try:
        _, stream = _stream_with_consumer(Aws(first.endpoint_url), received)
        Aws(first.endpoint_url).put(stream, [("k", "before")])
        runtime = start_runtime(emulator_url=first.endpoint_url)
        wait_for(lambda: read_jsonl(received), message="the first record")
    finally:
        first.stop()
    # WHEN the emulator goes away (reads fail) and comes back empty, and Terraform re-applies
    wait_for(lambda: runtime.status()["discovery"]["last_error"], timeout=20, message="a failed discovery")
    second = Emulator.start(port)
    try:
        resources = Aws(second.endpoint_url)
        _, stream = _stream_with_consumer(resources, received)
        resources.put(stream, [("k", "after")])
        written = time.time()
        # THEN the runtime picks up the new mapping and consumes it
        client.wait_until_drained(runtime.admin_url, since=written, timeout=30)
        assert [b["data"] for b in read_jsonl(received)] == [["before"], ["after"]]
        assert len(runtime.status()["consumers"]) == 1
    finally:
        runtime.stop()
        second.stop()
