"""Execution environments: one subprocess per concurrent execution of a function.

:class:`Invoker` is what the Kinesis pollers and the HTTP gateway call. It keeps a
:class:`FunctionPool` per function (at most ``max_workers`` processes, default 2, capped
by the function's reserved concurrency; 0 throttles every call as Lambda does), starts a
worker on demand (a cold start), and keeps it warm between invocations.

Each worker (``python -m devstack.runtime.worker``) runs with the function's own
environment: a minimal base (PATH, HOME, LANG/LC_*, TMPDIR, PYTHON*), the function's
``Environment.Variables`` from the emulator, and what the Lambda service provides
(AWS_REGION, fake credentials, AWS_LAMBDA_*, _HANDLER, LAMBDA_TASK_ROOT,
AWS_EXECUTION_ENV, TZ) plus ``AWS_ENDPOINT_URL`` pointing at the emulator.
``PYTHONPATH`` is the code root, so the handler module is imported from the source tree.
Handler stdout/stderr are appended to ``<state>/logs/<function>.log``; invocations cross
a private pipe pair as JSON frames (see :mod:`devstack.runtime.ipc`).

Outcomes follow Lambda's synchronous Invoke:
- success: the handler's JSON result;
- function error (``function_error == "Unhandled"``): a handler exception (errorType =
  the exception class), ``Runtime.MarshalError`` for a result JSON cannot encode,
  ``Runtime.ImportModuleError``/``Runtime.HandlerNotFound`` when init fails,
  ``Sandbox.Timedout`` ("Task timed out after N.00 seconds": the worker is killed and the
  next call cold-starts), ``Runtime.ExitError`` when the process dies,
  ``Function.ResponseSizeTooLarge`` above 6 MB;
- service error (the function never ran): ``RequestEntityTooLargeException`` for a
  request above 6 MB, ``TooManyRequestsException`` when throttled,
  ``ResourceNotFoundException`` for an unknown function.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from devstack.runtime import ipc
from devstack.runtime.model import INVOKE_PAYLOAD_LIMIT, FunctionSpec, function_name_from_arn
from devstack.runtime.worker import make_error

log = logging.getLogger("devstack.runtime.workers")

RUNTIME_ROOT = pathlib.Path(__file__).resolve().parents[2]  # where `devstack` is importable from
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_SESSION_TOKEN": "test"}
BASE_ENV_NAMES = ("PATH", "HOME", "LANG", "LANGUAGE", "TMPDIR", "SYSTEMROOT")
INIT_TIMEOUT = 10.0  # Lambda's init phase limit (seconds)
RESPONSE_LIMIT = INVOKE_PAYLOAD_LIMIT


@dataclass
class InvokeResult:
    """The outcome of one invocation, as Lambda's Invoke API reports it."""

    request_id: str
    payload: bytes
    function_error: str | None = None   # "Unhandled" when the function failed
    service_error: str | None = None    # set when the function was never run
    error_type: str | None = None
    error_message: str | None = None
    timed_out: bool = False
    duration_ms: float = 0.0
    cold_start: bool = False

    @property
    def ok(self) -> bool:
        return self.function_error is None and self.service_error is None

    @property
    def status_code(self) -> int:
        """The Invoke API's HTTP status: 200 even for function errors."""
        return {None: 200, "TooManyRequestsException": 429, "RequestEntityTooLargeException": 413,
                "ResourceNotFoundException": 404}.get(self.service_error, 500)

    def json(self) -> Any:
        return json.loads(self.payload) if self.payload else None


def _error_payload(error_type: str, message: str, request_id: str = "") -> bytes:
    return json.dumps(make_error(message, error_type, request_id=request_id)).encode()


def service_error(error_type: str, message: str, request_id: str = "") -> InvokeResult:
    return InvokeResult(request_id=request_id, payload=_error_payload(error_type, message, request_id),
                        service_error=error_type, error_type=error_type, error_message=message)


def function_error(error_type: str, message: str, request_id: str, **kw) -> InvokeResult:
    return InvokeResult(request_id=request_id, payload=_error_payload(error_type, message, request_id),
                        function_error="Unhandled", error_type=error_type, error_message=message, **kw)


def build_environment(spec: FunctionSpec, *, code_root: str, emulator_url: str | None,
                      region: str | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a worker of ``spec`` runs with (see the module docstring)."""
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items()
           if k in BASE_ENV_NAMES or k.startswith("LC_")
           or (k.startswith("PYTHON") and k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"))}
    env.update({k: str(v) for k, v in spec.environment.items()})
    region = region or spec.region
    today = _dt.datetime.now(_dt.UTC).strftime("%Y/%m/%d")
    python_path = [str(code_root)]
    if pathlib.Path(code_root).resolve() != RUNTIME_ROOT:
        python_path.append(str(RUNTIME_ROOT))
    env.update({
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        **FAKE_CREDENTIALS,
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"{today}/[$LATEST]{uuid.uuid4().hex}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime or 'python3.11'}",
        "_HANDLER": spec.handler,
        "LAMBDA_TASK_ROOT": str(code_root),
        "TZ": ":UTC",
        "PYTHONPATH": os.pathsep.join(python_path),
        "PYTHONUNBUFFERED": "1",
    })
    if emulator_url:
        env["AWS_ENDPOINT_URL"] = emulator_url
    else:
        env.pop("AWS_ENDPOINT_URL", None)
    return env


def safe_file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "function"


class WorkerDied(RuntimeError):
    pass


class Worker:
    """One worker process and its private channel."""

    def __init__(self, env: Mapping[str, str], code_root: str, log_path: pathlib.Path) -> None:
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        for fd in (req_w, resp_w):
            ipc.enlarge_pipe(fd)
        log_file = open(log_path, "ab", buffering=0)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "devstack.runtime.worker", str(req_r), str(resp_w)],
                pass_fds=(req_r, resp_w), cwd=code_root, env=dict(env),
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True,
            )
        finally:
            log_file.close()
            os.close(req_r)
            os.close(resp_w)
        self.req_fd = req_w
        self.resp_fd = resp_r
        self.ready = False
        self.closed = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float) -> None:
        if self.ready:
            return
        try:
            # "ready" or "init_error": a worker whose init failed answers its call with that error
            ipc.read_frame(self.resp_fd, time.monotonic() + timeout)
        except ipc.ChannelTimeout:
            self.kill()
            raise
        except (ipc.ChannelClosed, OSError) as exc:
            raise WorkerDied(self._exit_description()) from exc
        self.ready = True

    def call(self, meta: dict, payload: bytes, timeout: float) -> tuple[dict, bytes]:
        try:
            ipc.write_frame(self.req_fd, meta, payload)
            return ipc.read_frame(self.resp_fd, time.monotonic() + timeout)
        except (ipc.ChannelClosed, BrokenPipeError) as exc:
            raise WorkerDied(self._exit_description()) from exc

    def _exit_description(self) -> str:
        try:
            code = self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
            return "Runtime exited without providing a reason"
        if code is not None and code < 0:
            try:
                return f"Runtime exited with error: signal: {signal.Signals(-code).name.lower().removeprefix('sig')}"
            except ValueError:
                return f"Runtime exited with error: signal {-code}"
        return f"Runtime exited with error: exit status {code}"

    def kill(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.process.kill()
        self.close(wait=True)

    def close(self, wait: bool = False, timeout: float = 5.0) -> None:
        if not self.closed:
            self.closed = True
            for fd in (self.req_fd, self.resp_fd):
                try:
                    os.close(fd)
                except OSError:
                    pass
        if wait:
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def alive(self) -> bool:
        return not self.closed and self.process.poll() is None


@dataclass
class FunctionStats:
    invocations: int = 0
    errors: int = 0
    timeouts: int = 0
    throttles: int = 0
    cold_starts: int = 0
    last_error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def bump(self, name: str, by: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + by)


class FunctionPool:
    """Up to ``limit`` warm workers of one function configuration."""

    def __init__(self, spec: FunctionSpec, *, code_root: str, log_dir: pathlib.Path, emulator_url: str | None,
                 max_workers: int = 2, stats: FunctionStats | None = None) -> None:
        self.spec = spec
        self.code_root = code_root
        self.emulator_url = emulator_url
        self.log_path = log_dir / f"{safe_file_name(spec.name)}.log"
        self.limit = max_workers if spec.reserved_concurrency is None else min(max_workers, spec.reserved_concurrency)
        self.stats = stats or FunctionStats()
        self._idle: list[Worker] = []
        self._count = 0
        self._busy = 0
        self._cond = threading.Condition()
        self._retired = False

    # -- acquisition ---------------------------------------------------------------------
    def _acquire(self, timeout: float | None) -> Worker | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._retired:
                    return None
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive:
                        self._busy += 1
                        return worker
                    self._count -= 1
                    worker.close(wait=False)
                if self._count < self.limit:
                    self._count += 1
                    self._busy += 1
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining if remaining is not None else 1.0)
        try:
            env = build_environment(self.spec, code_root=self.code_root, emulator_url=self.emulator_url)
            worker = Worker(env, self.code_root, self.log_path)
        except Exception:
            with self._cond:
                self._count -= 1
                self._busy -= 1
                self._cond.notify()
            raise
        return worker

    def _release(self, worker: Worker) -> None:
        with self._cond:
            self._busy -= 1
            if worker.alive and not self._retired:
                self._idle.append(worker)
            else:
                self._count -= 1
                worker.close(wait=False)
            self._cond.notify()

    # -- invocation ----------------------------------------------------------------------
    def invoke(self, payload: bytes, *, request_id: str | None = None, acquire_timeout: float | None = None,
               client_context: dict | None = None) -> InvokeResult:
        request_id = request_id or str(uuid.uuid4())
        if len(payload) > INVOKE_PAYLOAD_LIMIT:
            return service_error("RequestEntityTooLargeException",
                                 f"Request must be smaller than {INVOKE_PAYLOAD_LIMIT} bytes for the InvokeFunction operation",
                                 request_id)
        if self.limit <= 0:
            self.stats.bump("throttles")
            return service_error("TooManyRequestsException", "Rate Exceeded.", request_id)
        worker = self._acquire(acquire_timeout)
        if worker is None:
            self.stats.bump("throttles")
            return service_error("TooManyRequestsException", "Rate Exceeded.", request_id)
        try:
            return self._invoke_on(worker, payload, request_id, client_context)
        finally:
            self._release(worker)

    def _invoke_on(self, worker: Worker, payload: bytes, request_id: str, client_context: dict | None) -> InvokeResult:
        spec = self.spec
        cold = not worker.ready
        self.stats.bump("invocations")
        if cold:
            self.stats.bump("cold_starts")
            try:
                worker.wait_ready(max(INIT_TIMEOUT, float(spec.timeout)))
            except ipc.ChannelTimeout:
                return self._failed(function_error("Runtime.InitTimeout",
                                                   f"RequestId: {request_id} Error: init timed out", request_id,
                                                   cold_start=True))
            except WorkerDied as exc:
                worker.close(wait=False)
                return self._failed(function_error("Runtime.ExitError", f"RequestId: {request_id} Error: {exc}",
                                                   request_id, cold_start=True))
        started = time.perf_counter()
        deadline_ms = int(time.time() * 1000) + spec.timeout * 1000
        meta = {"request_id": request_id, "deadline_ms": deadline_ms, "invoked_function_arn": spec.arn,
                "client_context": client_context}
        try:
            reply, body = worker.call(meta, payload, float(spec.timeout))
        except ipc.ChannelTimeout:
            worker.kill()
            self.stats.bump("timeouts")
            message = f"RequestId: {request_id} Error: Task timed out after {spec.timeout:.2f} seconds"
            self._log_line(f"{iso_millis(time.time())} {request_id} Task timed out after {spec.timeout:.2f} seconds")
            return self._failed(function_error("Sandbox.Timedout", message, request_id, timed_out=True,
                                               duration_ms=(time.perf_counter() - started) * 1000, cold_start=cold))
        except WorkerDied as exc:
            worker.close(wait=False)
            self._log_line(f"{iso_millis(time.time())} {request_id} {exc}")
            return self._failed(function_error("Runtime.ExitError", f"RequestId: {request_id} Error: {exc}",
                                               request_id, duration_ms=(time.perf_counter() - started) * 1000,
                                               cold_start=cold))
        duration = (time.perf_counter() - started) * 1000
        if reply.get("status") == "ok":
            if len(body) > RESPONSE_LIMIT:
                return self._failed(function_error(
                    "Function.ResponseSizeTooLarge",
                    f"Response payload size exceeded maximum allowed payload size ({RESPONSE_LIMIT} bytes).",
                    request_id, duration_ms=duration, cold_start=cold))
            return InvokeResult(request_id=request_id, payload=body, duration_ms=duration, cold_start=cold)
        try:
            error = json.loads(body)
        except ValueError:
            error = {}
        return self._failed(InvokeResult(request_id=request_id, payload=body, function_error="Unhandled",
                                         error_type=error.get("errorType"), error_message=error.get("errorMessage"),
                                         duration_ms=duration, cold_start=cold))

    def _failed(self, result: InvokeResult) -> InvokeResult:
        self.stats.bump("errors")
        self.stats.last_error = f"{result.error_type}: {result.error_message}"
        return result

    def _log_line(self, line: str) -> None:
        try:
            with open(self.log_path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        except OSError:
            pass

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def warm_workers(self) -> int:
        with self._cond:
            return self._count

    @property
    def busy_workers(self) -> int:
        with self._cond:
            return self._busy

    def retire(self, wait: bool = False) -> None:
        """Stop taking invocations; idle workers exit now, busy ones when they finish."""
        with self._cond:
            self._retired = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._cond.notify_all()
        for worker in idle:
            worker.close(wait=wait)


def iso_millis(epoch: float) -> str:
    """``2024-05-01T12:00:00.123Z``: the UTC time format of Lambda's logs and records."""
    moment = _dt.datetime.fromtimestamp(epoch, _dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Invoker:
    """Invokes functions by name or ARN; configured from discovery."""

    def __init__(self, *, code_root: str | os.PathLike, log_dir: str | os.PathLike, emulator_url: str | None,
                 max_workers: int = 2, max_workers_per_function: Mapping[str, int] | None = None) -> None:
        self.code_root = str(pathlib.Path(code_root).resolve())
        self.log_dir = pathlib.Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.emulator_url = emulator_url
        self.max_workers = max_workers
        self.max_workers_per_function = dict(max_workers_per_function or {})
        self._pools: dict[str, FunctionPool] = {}
        self._stats: dict[str, FunctionStats] = {}
        self._lock = threading.Lock()
        self._closed = False

    def configure(self, functions: Mapping[str, FunctionSpec]) -> None:
        """Start using ``functions``: a changed configuration gets fresh workers."""
        retired: list[FunctionPool] = []
        with self._lock:
            if self._closed:
                return
            for name, spec in functions.items():
                current = self._pools.get(name)
                if current is not None and current.spec.fingerprint() == spec.fingerprint():
                    continue
                self._pools[name] = self._pool(spec, self.max_workers_per_function.get(name, self.max_workers),
                                               self._stats.setdefault(name, FunctionStats()))
                if current is not None:
                    retired.append(current)
                    log.info("function changed; new workers on next call function=%s handler=%s", name, spec.handler)
                else:
                    log.info("function discovered function=%s handler=%s timeout=%ss memory=%sMB max_workers=%s",
                             name, spec.handler, spec.timeout, spec.memory_size, self._pools[name].limit)
                if spec.runtime and not spec.runtime.startswith("python"):
                    log.warning("function %s has runtime %s; the local runtime runs Python handlers only",
                                name, spec.runtime)
            for name in [n for n in self._pools if n not in functions]:
                retired.append(self._pools.pop(name))
                log.info("function removed function=%s", name)
        for pool in retired:
            pool.retire()

    def _pool(self, spec: FunctionSpec, max_workers: int, stats: FunctionStats) -> FunctionPool:
        return FunctionPool(spec, code_root=self.code_root, log_dir=self.log_dir, emulator_url=self.emulator_url,
                            max_workers=max_workers, stats=stats)

    def spec(self, function: str) -> FunctionSpec | None:
        pool = self._pools.get(function_name_from_arn(function))
        return pool.spec if pool else None

    def invoke(self, function: str, payload: bytes | Any, *, request_id: str | None = None,
               acquire_timeout: float | None = None, client_context: dict | None = None) -> InvokeResult:
        if not isinstance(payload, (bytes, bytearray)):
            payload = json.dumps(payload).encode()
        pool = self._pools.get(function_name_from_arn(function))
        if pool is None:
            return service_error("ResourceNotFoundException", f"Function not found: {function}", request_id or "")
        return pool.invoke(bytes(payload), request_id=request_id, acquire_timeout=acquire_timeout,
                           client_context=client_context)

    def reset(self, function: str | None = None) -> None:
        """Recycle workers (e.g. after editing handler code): next calls cold-start."""
        with self._lock:
            names = [function_name_from_arn(function)] if function else list(self._pools)
            for name in names:
                pool = self._pools.get(name)
                if pool is None:
                    continue
                self._pools[name] = self._pool(pool.spec, pool.limit, pool.stats)
                pool.retire()

    def status(self) -> list[dict]:
        out = []
        for name, pool in sorted(self._pools.items()):
            s = pool.stats
            out.append({
                "name": name, "arn": pool.spec.arn, "handler": pool.spec.handler, "timeout": pool.spec.timeout,
                "memory_size": pool.spec.memory_size, "reserved_concurrency": pool.spec.reserved_concurrency,
                "max_workers": pool.limit, "warm_workers": pool.warm_workers, "busy_workers": pool.busy_workers,
                "invocations": s.invocations, "errors": s.errors, "timeouts": s.timeouts, "throttles": s.throttles,
                "cold_starts": s.cold_starts, "last_error": s.last_error, "log_file": str(pool.log_path),
            })
        return out

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.retire(wait=True)
