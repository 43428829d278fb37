"""The local runtime as one object: discovery loop, workers, stream consumers, HTTP servers.

    rt = LocalRuntime(emulator_url="http://127.0.0.1:4566", state_dir=".shopstream",
                      code_root=".", gateway_port=8080, admin_port=4599).start()
    ...
    rt.status()   # the JSON served at GET /status
    rt.stop()     # pollers finish their in-flight batch, workers exit, servers close

Every ``discovery_interval`` seconds (2 s) the emulator is read again
(:mod:`.discovery`): new or changed functions get fresh workers; stream consumers — each
event source mapping (:mod:`.esm`) and each Firehose delivery stream with a Kinesis
source (:mod:`.firehose`) — are started, re-configured (from each shard's next batch or
delivery), or stopped when disabled or deleted; new shards get pollers; scheduled rules
(:mod:`.schedules`) are run; and the gateway's route table is replaced. If the emulator does not
answer, the last known state keeps running and the error is reported in ``status()``.

State lives under ``<state_dir>/runtime/`` (or ``<state_dir>`` itself when it is already
named ``runtime``): ``checkpoints.sqlite`` and ``logs/<function>.log``.
"""
from __future__ import annotations

import asyncio
import logging
import os
import pathlib
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from devstack.auth import LocalIssuer
from devstack.runtime.checkpoints import CheckpointStore
from devstack.runtime.discovery import ClientFactory, discover
from devstack.runtime.esm import BotoDestinationSender, EsmRunner
from devstack.runtime.firehose import COPY_TIMEOUT, BotoObjectStore, DataApiWarehouse, FirehoseRunner
from devstack.runtime.gateway import GatewayApp, RouteTable
from devstack.runtime.model import DEFAULT_REGION, Discovery, EsmSpec, function_name_from_arn
from devstack.runtime.s3_notifications import S3NotificationRunner
from devstack.runtime.schedules import ScheduleRunner
from devstack.runtime.shards import BotoShardReader, PollerSettings, Precedence, StreamConsumer
from devstack.runtime.workers import Invoker

log = logging.getLogger("devstack.runtime")

UNREACHABLE_AFTER = 2  # failed discoveries in a row before the gateway says the emulator is gone


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch))

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_EMULATOR_URL = "http://127.0.0.1:4566"
DEFAULT_GATEWAY_PORT = 8080
DEFAULT_ADMIN_PORT = 4599


def default_region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


@dataclass
class RuntimeConfig:
    emulator_url: str = DEFAULT_EMULATOR_URL
    state_dir: str | os.PathLike = ".shopstream"
    code_root: str | os.PathLike = REPO_ROOT
    gateway_port: int = DEFAULT_GATEWAY_PORT     # 0: any free port (see LocalRuntime.gateway_url)
    admin_port: int = DEFAULT_ADMIN_PORT         # 0: any free port
    region: str = field(default_factory=default_region)
    host: str = "127.0.0.1"
    discovery_interval: float = 2.0
    max_workers: int = 2
    max_workers_per_function: Mapping[str, int] = field(default_factory=dict)
    poller: PollerSettings = field(default_factory=PollerSettings)
    schedule_period_cap: float | None = None     # run rate(...) schedules at least this often (local time-lapse)
    stop_timeout: float | None = None            # default: the longest function timeout + 5 s
    # consumers (function or delivery stream names) the others wait for while they are
    # behind: the machine's few cores go to the operational sink first (shards.Precedence)
    first_consumers: tuple[str, ...] = ()
    precedence_max_hold: float = 60.0


class LocalRuntime:
    def __init__(self, config: RuntimeConfig | None = None, **overrides: Any) -> None:
        config = replace(config or RuntimeConfig(), **overrides)
        if config.host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the local runtime only binds to the loopback interface")
        self.config = config
        base = pathlib.Path(config.state_dir).resolve()
        # `--state-dir .shopstream` → .shopstream/runtime; a dir already named "runtime" is used as is
        self.state_dir = base if base.name == "runtime" else base / "runtime"
        self.code_root = pathlib.Path(config.code_root).resolve()
        self.clients = ClientFactory(config.emulator_url.rstrip("/"), config.region)
        self.invoker = Invoker(code_root=self.code_root, log_dir=self.state_dir / "logs",
                               emulator_url=config.emulator_url.rstrip("/"), max_workers=config.max_workers,
                               max_workers_per_function=config.max_workers_per_function)
        self.gateway = GatewayApp(self.invoker)
        self.store: CheckpointStore | None = None
        self.sender = BotoDestinationSender(self.clients)
        # stream consumers by consumer id (an event source mapping's UUID, …)
        self.consumers: dict[str, StreamConsumer] = {}
        self.precedence = (Precedence(config.first_consumers, max_hold=config.precedence_max_hold)
                           if config.first_consumers else None)
        self._stopping: dict[str, StreamConsumer] = {}
        self.schedules: dict[str, ScheduleRunner] = {}
        self.bucket_notifications: dict[str, S3NotificationRunner] = {}
        self.objects = BotoObjectStore(self.clients)
        self.warehouse = DataApiWarehouse(self.clients)
        self._discovery_lock = threading.Lock()
        self._stop = threading.Event()
        self._discovery_thread: threading.Thread | None = None
        self._server_thread: threading.Thread | None = None
        self._servers: list[Any] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sockets: dict[str, socket.socket] = {}
        self.gateway_port: int | None = None
        self.admin_port: int | None = None
        self.started_at: float | None = None
        self.discovery_state: dict[str, Any] = {"count": 0, "last_started_at": None, "last_completed_at": None,
                                                "last_completed_started_at": None, "last_error": None,
                                                "consecutive_errors": 0}
        self.last_discovery: Discovery | None = None
        self._held: Discovery | None = None  # the last discovery that found a deployment
        self._logged: set = set()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> LocalRuntime:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.store = CheckpointStore(self.state_dir / "checkpoints.sqlite")
        self.started_at = time.time()
        self._bind()
        # the stack's token issuer (devstack/auth.py): made by `shopstream up` with its gateway's
        # URL as issuer; a runtime started on its own makes one
        self.gateway.set_issuer(LocalIssuer.load(self.state_dir) or LocalIssuer.ensure(self.state_dir, self.gateway_url))
        self._start_servers()
        log.info("local runtime started emulator=%s gateway=%s admin=%s state=%s code_root=%s region=%s",
                 self.config.emulator_url, self.gateway_url, self.admin_url, self.state_dir, self.code_root,
                 self.config.region)
        self.discover_now()
        self._discovery_thread = threading.Thread(target=self._discovery_loop, name="runtime-discovery", daemon=True)
        self._discovery_thread.start()
        return self

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        log.info("stopping: pollers finish their in-flight batch")
        if self._discovery_thread is not None:
            self._discovery_thread.join(timeout=15)
        with self._discovery_lock:
            consumers = list(self.consumers.values()) + list(self._stopping.values())
            self.consumers.clear()
            self._stopping.clear()
            schedules = list(self.schedules.values())
            self.schedules.clear()
            schedules += list(self.bucket_notifications.values())
            self.bucket_notifications.clear()
        for consumer in consumers:
            consumer.stop()
        for schedule in schedules:
            schedule.stop()
        timeout = self.config.stop_timeout
        if timeout is None:
            timeout = max([self._work_timeout(c) for c in consumers] + [0]) + 5.0
        deadline = time.monotonic() + timeout
        for consumer in consumers:
            consumer.join(max(0.0, deadline - time.monotonic()))
        self._stop_servers()
        self.gateway.close()
        self.invoker.close()
        if self.store is not None:
            self.store.close()
        log.info("local runtime stopped")

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def gateway_url(self) -> str | None:
        return f"http://{self.config.host}:{self.gateway_port}" if self.gateway_port else None

    @property
    def admin_url(self) -> str | None:
        return f"http://{self.config.host}:{self.admin_port}" if self.admin_port else None

    # -- HTTP servers ------------------------------------------------------------------------
    def _bind(self) -> None:
        for name, port in (("gateway", self.config.gateway_port), ("admin", self.config.admin_port)):
            # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose
            # proto says TCP, and without it delayed ACKs add ~40 ms to every keep-alive response.
            sock = socket.socket(socket.AF_INET6 if ":" in self.config.host else socket.AF_INET, socket.SOCK_STREAM,
                                 socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.config.host, port))
            except OSError as exc:
                sock.close()
                for other in self._sockets.values():
                    other.close()
                raise OSError(exc.errno, f"cannot listen on {self.config.host}:{port} for the {name}: {exc.strerror}"
                              " (is another runtime running? choose another port)") from exc
            self._sockets[name] = sock
        self.gateway_port = self._sockets["gateway"].getsockname()[1]
        self.admin_port = self._sockets["admin"].getsockname()[1]

    def _start_servers(self) -> None:
        import uvicorn

        from devstack.runtime.admin import AdminApp

        apps = {"gateway": self.gateway, "admin": AdminApp(self)}
        self._servers = []
        for name, app in apps.items():
            config = uvicorn.Config(app, http="httptools", lifespan="off", log_level="warning", access_log=False,
                                    server_header=False, date_header=True, timeout_keep_alive=30)
            self._servers.append((uvicorn.Server(config), self._sockets[name]))
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop

            async def main() -> None:
                tasks = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in self._servers]
                while not all(server.started for server, _ in self._servers):
                    if any(t.done() for t in tasks):
                        break
                    await asyncio.sleep(0.01)
                ready.set()
                await asyncio.gather(*tasks)

            try:
                loop.run_until_complete(main())
            except BaseException as exc:  # noqa: BLE001 - reported to start()
                failure.append(exc)
            finally:
                ready.set()
                loop.close()

        self._server_thread = threading.Thread(target=serve, name="runtime-http", daemon=True)
        self._server_thread.start()
        ready.wait(15)
        if failure or not all(server.started for server, _ in self._servers):
            raise RuntimeError(f"the HTTP servers did not start: {failure[0] if failure else 'timeout'}")

    def _stop_servers(self) -> None:
        for server, _ in self._servers:
            server.should_exit = True
        if self._server_thread is not None:
            self._server_thread.join(timeout=10)
        for sock in self._sockets.values():
            try:
                sock.close()
            except OSError:
                pass

    # -- discovery -----------------------------------------------------------------------
    def _discovery_loop(self) -> None:
        while not self._stop.wait(self.config.discovery_interval):
            self.discover_now()

    def discover_now(self) -> Discovery | None:
        """Read the emulator and apply what changed; returns None when it did not answer."""
        with self._discovery_lock:
            if self._stop.is_set():
                return None
            started = time.time()
            state = self.discovery_state
            state["last_started_at"] = started
            try:
                found = discover(self.clients)
            except Exception as exc:
                state["consecutive_errors"] += 1
                state["last_error"] = f"{type(exc).__name__}: {exc}"
                state["failing_since"] = state.get("failing_since") or started
                n = state["consecutive_errors"]
                (log.warning if n in (1, 2) or n % 30 == 0 else log.debug)(
                    "cannot read the emulator at %s (%s); keeping the last known state (attempt %d)",
                    self.config.emulator_url, state["last_error"], n)
                if n >= UNREACHABLE_AFTER or self.last_discovery is None:
                    self.gateway.set_unavailable(
                        f"the AWS emulator at {self.config.emulator_url} is not answering "
                        f"({n} failed reads since {_clock(state['failing_since'])}). Its state lives in memory: if "
                        "it stopped, the stream, tables and buckets are gone; bring the stack up again "
                        "(shopstream down && shopstream up) and replay")
                return None
            if state["consecutive_errors"]:
                log.info("emulator reachable again after %d failed discoveries", state["consecutive_errors"])
            state["consecutive_errors"] = 0
            state["last_error"] = None
            state["failing_since"] = None
            lost = self._lost_deployment(found)
            state["lost_deployment"] = lost
            if lost:
                self._log_once(("lost-deployment", started // 60), "%s", lost)
            self._apply(found)
            if lost:  # after _apply, which serves the (now empty) routes
                self.gateway.set_unavailable(lost)
            self.last_discovery = found
            state["count"] += 1
            state["last_completed_at"] = time.time()
            state["last_completed_started_at"] = started
            return found

    def _lost_deployment(self, found: Discovery) -> str | None:
        """Why the emulator no longer holds what it held (it was restarted: its state
        lives in memory), or None."""
        if found.apis or found.functions:
            self._held = found
            return None
        before = self._held
        if before is None:
            return None
        return (f"the AWS emulator at {self.config.emulator_url} answers but no longer holds the deployment "
                f"({len(before.functions)} functions and {len(before.apis)} HTTP APIs before, none now): it was "
                "restarted and its state, kept in memory, is gone; bring the stack up again "
                "(shopstream down && shopstream up) and replay")

    def _apply(self, found: Discovery) -> None:
        self.invoker.configure(found.functions)
        if self.last_discovery is None or self.last_discovery.apis != found.apis:
            for api in found.apis:
                log.info("http api api=%s name=%s stages=%s routes=%s", api.api_id, api.name, ",".join(api.stages),
                         "; ".join(f"{r.route_key} -> {r.function_name}" for r in api.routes))
        self.gateway.set_routes(RouteTable(found.apis))
        if self.store is None:
            return
        for uuid, spec in found.mappings.items():
            runner = self.consumers.get(uuid)
            reason = None
            if not spec.enabled:
                reason = "disabled"
            elif spec.function_name not in found.functions:
                reason = f"function {spec.function_name} not found"
            elif spec.event_source_arn not in found.shards:
                reason = "stream not readable"
            if reason is not None:
                if runner is not None and reason != "stream not readable":
                    log.info("event source mapping stopped (%s) esm=%s", reason, uuid)
                    self._retire(uuid)
                elif runner is None:
                    self._log_once(("esm-inactive", uuid, reason),
                                   "event source mapping not polled (%s) esm=%s stream=%s", reason, uuid,
                                   spec.event_source_arn)
                continue
            if runner is None:
                runner = self._new_esm_runner(spec)
                if runner is None:
                    continue
            elif isinstance(runner, EsmRunner) and runner.esm.fingerprint() != spec.fingerprint():
                log.info("event source mapping changed; applies from the next batch esm=%s %s", uuid,
                         _describe(spec))
                runner.update(spec)
            runner.sync_shards(found.shards.get(spec.event_source_arn, ()),
                               found.retention_seconds.get(spec.event_source_arn))
        for uuid in [u for u, c in self.consumers.items() if isinstance(c, EsmRunner) and u not in found.mappings]:
            log.info("event source mapping deleted; stopping its pollers esm=%s", uuid)
            self._retire(uuid)
        self._apply_delivery_streams(found)
        self._apply_schedules(found)
        self._apply_bucket_notifications(found)

    def _apply_bucket_notifications(self, found: Discovery) -> None:
        for bucket, spec in found.bucket_notifications.items():
            runner = self.bucket_notifications.get(bucket)
            if runner is None:
                log.info("S3 notifications discovered bucket=%s functions=%s", bucket,
                         ",".join(sorted({n.function_arn for n in spec.notifications})))
                runner = S3NotificationRunner(spec, self.invoker, self.clients.new("s3", spec.region), self.state_dir)
                self.bucket_notifications[bucket] = runner
                runner.start()
            elif runner.spec.fingerprint() != spec.fingerprint():
                log.info("S3 notifications changed bucket=%s", bucket)
                runner.update(spec)
        for bucket in [b for b in self.bucket_notifications if b not in found.bucket_notifications]:
            log.info("S3 notifications removed bucket=%s", bucket)
            self.bucket_notifications.pop(bucket).stop()

    def _apply_delivery_streams(self, found: Discovery) -> None:
        wanted = set()
        for name, spec in found.delivery_streams.items():
            consumer_id = f"firehose:{name}"
            runner = self.consumers.get(consumer_id)
            if spec.status == "ACTIVE" and spec.source_stream_arn not in found.shards and runner is not None:
                wanted.add(consumer_id)  # the stream could not be listed this time: keep delivering
                continue
            if spec.status != "ACTIVE" or spec.source_stream_arn not in found.shards:
                self._log_once(("firehose-inactive", name, spec.status), "delivery stream not delivered (%s) name=%s",
                               spec.status if spec.status != "ACTIVE" else "source stream not readable", name)
                continue
            if spec.processor_arn and function_name_from_arn(spec.processor_arn) not in found.functions:
                self._log_once(("firehose-no-function", name), "delivery stream not delivered (its transformation "
                               "%s is not deployed) name=%s", spec.processor_arn, name)
                continue
            wanted.add(consumer_id)
            if runner is None:
                if not self._await_retired(consumer_id):
                    continue
                log.info("delivery stream discovered name=%s source=%s table=%s processor=%s buffer=%.1fMB/%ss",
                         name, spec.source_stream_arn, spec.table, spec.processor_arn,
                         spec.buffer_bytes / 1048576, spec.buffer_seconds)
                runner = FirehoseRunner(spec, reader=BotoShardReader(self.clients.new("kinesis", spec.region),
                                                                     spec.source_stream_arn),
                                        store=self.store, invoker=self.invoker, objects=self.objects,
                                        warehouse=self.warehouse, settings=self.config.poller)
                runner.precedence = self.precedence
                self.consumers[consumer_id] = runner
            elif isinstance(runner, FirehoseRunner) and runner.spec.fingerprint() != spec.fingerprint():
                log.info("delivery stream changed; applies from the next delivery name=%s", name)
                runner.update(spec)
            runner.sync_shards(found.shards.get(spec.source_stream_arn, ()),
                               found.retention_seconds.get(spec.source_stream_arn))
        for consumer_id in [c for c, r in self.consumers.items() if isinstance(r, FirehoseRunner) and c not in wanted]:
            log.info("delivery stream gone or inactive; stopping its pollers %s", consumer_id)
            self._retire(consumer_id)

    def _apply_schedules(self, found: Discovery) -> None:
        for name, spec in found.schedules.items():
            runner = self.schedules.get(name)
            if runner is None:
                log.info("scheduled rule discovered rule=%s expression=%s targets=%s", name, spec.expression,
                         ",".join(arn for arn, _ in spec.targets))
                runner = ScheduleRunner(spec, self.invoker, period_cap=self.config.schedule_period_cap)
                self.schedules[name] = runner
                runner.start()
            elif runner.spec.fingerprint() != spec.fingerprint():
                log.info("scheduled rule changed rule=%s expression=%s", name, spec.expression)
                runner.update(spec)
        for name in [n for n in self.schedules if n not in found.schedules]:
            log.info("scheduled rule deleted rule=%s", name)
            self.schedules.pop(name).stop()

    def run_schedule(self, name: str) -> bool:
        """Run a scheduled rule now; False if there is no such rule."""
        runner = self.schedules.get(name)
        if runner is None:
            return False
        runner.run_now()
        return True

    def _work_timeout(self, consumer: StreamConsumer) -> float:
        """How long the work a consumer has in hand may take: its function's timeout, and
        for a delivery stream the COPY's as well."""
        spec = self.invoker.spec(getattr(consumer, "function_arn", ""))
        timeout = float(spec.timeout) if spec is not None else 3.0
        return timeout + COPY_TIMEOUT if isinstance(consumer, FirehoseRunner) else timeout

    def _await_retired(self, consumer_id: str) -> bool:
        """Never two pollers on one shard for one consumer: False (try again at the next
        discovery) while a retired one is still finishing its work."""
        previous = self._stopping.pop(consumer_id, None)
        if previous is None:
            return True
        previous.join(timeout=min(self._work_timeout(previous) + 5, 15.0))
        if previous.is_alive():
            self._stopping[consumer_id] = previous
            self._log_once(("retiring", consumer_id, id(previous)), "not restarting %s: its previous pollers are "
                           "still finishing their work", consumer_id)
            return False
        return True

    def _new_esm_runner(self, spec: EsmSpec) -> EsmRunner | None:
        if not self._await_retired(spec.uuid):
            return None
        log.info("event source mapping discovered esm=%s %s", spec.uuid, _describe(spec))
        function = spec.function_arn

        def role() -> str:
            fspec = self.invoker.spec(function)
            return fspec.role if fspec else ""

        runner = EsmRunner(spec, reader=BotoShardReader(self.clients.new("kinesis", spec.region), spec.event_source_arn),
                           invoker=self.invoker, sender=self.sender, store=self.store, role_arn=role,
                           settings=self.config.poller)
        runner.precedence = self.precedence
        self.consumers[spec.uuid] = runner
        return runner

    def _retire(self, consumer_id: str) -> None:
        consumer = self.consumers.pop(consumer_id, None)
        if consumer is not None:
            consumer.stop()
            self._stopping[consumer_id] = consumer

    def _log_once(self, key, message, *args) -> None:
        if key not in self._logged:
            self._logged.add(key)
            log.warning(message, *args)

    # -- status --------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        consumers = list(self.consumers.values())
        return {
            "time": time.time(),
            "runtime": {
                "emulator_url": self.config.emulator_url, "gateway_url": self.gateway_url,
                "admin_url": self.admin_url, "state_dir": str(self.state_dir), "code_root": str(self.code_root),
                "region": self.config.region, "started_at": self.started_at, "pid": os.getpid(),
                "stopping": self._stop.is_set(),
            },
            "discovery": dict(self.discovery_state),
            # plainly: can the runtime read the emulator, and does it still hold the deployment
            "emulator": {
                "answering": self.discovery_state["consecutive_errors"] == 0 and self.last_discovery is not None,
                "last_error": self.discovery_state["last_error"],
                "failing_since": self.discovery_state.get("failing_since"),
                "lost_deployment": self.discovery_state.get("lost_deployment"),
            },
            "functions": self.invoker.status(),
            # every stream consumer, with its kind (event-source-mapping, …) and its shards
            "consumers": [c.status() for c in sorted(consumers, key=lambda c: (c.kind, c.name, c.consumer_id))],
            "schedules": [r.status() for _, r in sorted(self.schedules.items())],
            "s3_notifications": [r.status() for _, r in sorted(self.bucket_notifications.items())],
            "precedence": self.precedence.status() if self.precedence else None,
            "gateway": dict(self.gateway.status(), url=self.gateway_url),
        }


def _describe(spec: EsmSpec) -> str:
    return (f"function={spec.function_name} stream={spec.stream_name} batch_size={spec.batch_size} "
            f"window={spec.maximum_batching_window}s start={spec.starting_position} "
            f"partial={spec.report_batch_item_failures} bisect={spec.bisect_on_error} "
            f"retries={spec.maximum_retry_attempts} max_age={spec.maximum_record_age} "
            f"on_failure={spec.on_failure_destination}")
