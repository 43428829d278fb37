"""The local stack's lifecycle: emulator → terraform apply → local runtime, and back.

Both long-lived parts run as their own processes so they outlive the command that
started them (``shopstream up`` returns; ``shopstream down`` stops them):

* the emulator (moto's server with shopstream's patches) on 127.0.0.1:4566, which also
  owns the local warehouse (DuckDB under the state directory, or the PostgreSQL database
  given with ``--warehouse``) behind its Redshift Data API,
* the local runtime (function workers, Kinesis pollers and Firehose deliveries, scheduled
  rules, the HTTP gateway on :8080, the admin API on :4599).

Everything they keep lives under the state directory (``.shopstream/`` by default):
pid files, logs, Terraform's local-mode state, the runtime's checkpoints, the DuckDB
warehouse. The emulator keeps its data in memory, so ``down`` also forgets the Terraform
state and checkpoints that referred to it, and ``up`` starts the warehouse empty. The
runtime keeps nothing the emulator does not: ``restart`` (or ``up`` while the emulator
runs) starts a new runtime against the running emulator, from the checkpoints.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests

from devstack.auth import LocalIssuer
from devstack.emulator import Emulator, EmulatorError, is_up

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = ROOT / ".shopstream"
DEFAULT_REGION = "eu-west-1"


# What the local stack sets on top of infra/terraform's defaults, which are AWS's: short
# buffering so a laptop sees results in seconds, and buckets that go with the stack.
LOCAL_VARIABLES: dict[str, Any] = {
    "archive_batching_window_seconds": 1,
    "firehose_buffering_interval_seconds": 1,
    "firehose_processor_buffer_interval_seconds": 1,
    "firehose_retry_duration_seconds": 60,
    "force_destroy_buckets": True,
}
MERGE_RULE_OUTPUT = "merge_rule"  # outputs["warehouse"][...]: the scheduled merge's rule name
# EventBridge schedules run at most once a minute; locally, rate schedules run this often
# at most, so an event POSTed reaches the warehouse's views within seconds.
LOCAL_SCHEDULE_PERIOD_CAP = 5.0


class StackError(RuntimeError):
    pass


@dataclass
class StackConfig:
    state_dir: Path = DEFAULT_STATE_DIR
    emulator_port: int = 4566
    gateway_port: int = 8080
    admin_port: int = 4599
    region: str = DEFAULT_REGION
    warehouse_url: str | None = None  # None: DuckDB in <state_dir>/warehouse
    precedence: bool = True  # the invoice writer goes first while it is behind (runtime.shards.Precedence)
    auth: bool = True  # the HTTP API requires tokens of the local issuer (devstack/auth.py); False: --no-auth

    @property
    def warehouse_dir(self) -> Path:
        return self.state_dir / "warehouse"

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def terraform_dir(self) -> Path:
        return self.state_dir / "terraform"

    @property
    def runtime_dir(self) -> Path:
        return self.state_dir / "runtime"


@dataclass
class StackInfo:
    """What ``up`` leaves behind in ``run/stack.json`` for other commands."""

    emulator_url: str
    api_url: str
    admin_url: str
    region: str
    outputs: dict[str, Any]
    terraform_s: float

    def save(self, config: StackConfig) -> None:
        (config.run_dir / "stack.json").write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, config: StackConfig) -> StackInfo | None:
        path = config.run_dir / "stack.json"
        return cls(**json.loads(path.read_text())) if path.exists() else None


def _redacted(url: str) -> str:
    from devstack.warehouse.engine import redacted_url

    return redacted_url(url)


def _check_warehouse_url(url: str) -> None:
    """A PostgreSQL warehouse given to ``up`` answers before anything starts."""
    from devstack.warehouse import LocalWarehouse, WarehouseError

    try:
        LocalWarehouse.open(url).close()
    except (ValueError, WarehouseError) as exc:
        raise StackError(f"--warehouse {_redacted(url)}: {getattr(exc, 'reason', None) or exc}") from exc


def clients(config: StackConfig) -> Callable[..., Any]:
    """``clients("s3")`` → a boto3 client of the running stack's emulator."""
    import boto3

    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=config.region)
    made: dict[str, Any] = {}

    def client(service: str, region: str | None = None) -> Any:
        if service not in made:
            made[service] = session.client(service, endpoint_url=config.emulator_url, region_name=region or config.region)
        return made[service]

    return client


def warehouse_executor(config: StackConfig, info: StackInfo) -> Any:
    """The local warehouse through the emulator's Redshift Data API, as the merge reaches it."""
    from warehouse.data_api import DataApiExecutor

    target = info.outputs["warehouse"]
    return DataApiExecutor(clients(config)("redshift-data"), database=target["database"],
                           cluster_id=target["cluster_id"] or None, workgroup=target["workgroup"] or None,
                           secret_arn=target["secret_arn"], timeout=600)


def require_running(config: StackConfig) -> StackInfo:
    info = StackInfo.load(config)
    if info is None or not is_running(config):
        raise StackError(f"the local stack is not up (state in {config.state_dir}); run `shopstream up` first")
    return info


def aws_env(config: StackConfig) -> dict[str, str]:
    """The environment a boto3 client (or the AWS CLI) needs to talk to the emulator."""
    return {
        "AWS_ENDPOINT_URL": config.emulator_url,
        "AWS_REGION": config.region,
        "AWS_DEFAULT_REGION": config.region,
        "AWS_ACCESS_KEY_ID": "test",  # the emulator accepts any credentials
        "AWS_SECRET_ACCESS_KEY": "test",
    }


def _pid(config: StackConfig, name: str) -> int | None:
    """The live process behind a pid file (a killed one that is not yet reaped, a zombie,
    is not alive: it is reaped here when it is our child)."""
    path = config.run_dir / f"{name}.pid"
    try:
        pid = int(path.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return None  # our child, and it had exited
    except ChildProcessError:
        pass
    try:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return None
    except (OSError, IndexError):
        pass
    return pid


def _write_pid(config: StackConfig, name: str, pid: int) -> None:
    (config.run_dir / f"{name}.pid").write_text(str(pid))


def _stop_pid(config: StackConfig, name: str, timeout: float = 20.0) -> bool:
    """SIGTERM the process and, when it leads its own process group (the runtime and its
    workers), the whole group; return once every one of them has exited (SIGKILL after
    ``timeout``), so that the ports they listened on are free for the next ``up``."""
    pid = _pid(config, name)
    (config.run_dir / f"{name}.pid").unlink(missing_ok=True)
    if pid is None:
        return False
    try:
        group = os.getpgid(pid) == pid
    except OSError:
        group = False

    def alive() -> bool:
        try:  # reap it if it is our child
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        try:
            os.killpg(pid, 0) if group else os.kill(pid, 0)
        except OSError:
            return False
        return not group or _group_has_live_member(pid)

    try:
        os.killpg(pid, signal.SIGTERM) if group else os.kill(pid, signal.SIGTERM)
    except OSError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            return True
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL) if group else os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    deadline = time.monotonic() + 5.0
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    return True


def _group_has_live_member(pgid: int) -> bool:
    """Whether a process of the group is still running (zombies, exited but not yet
    reaped by a parent of their own, hold no sockets and do not count)."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True  # no /proc: killpg(pgid, 0) succeeding is all there is to go on
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def is_running(config: StackConfig) -> bool:
    return _pid(config, "emulator") is not None or _pid(config, "runtime") is not None


def _port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port (a port in TIME_WAIT counts as free: our
    servers bind with SO_REUSEADDR)."""
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) != 0


def can_restart(config: StackConfig) -> bool:
    """The emulator runs with its deployment and the runtime does not (it crashed or was
    stopped): ``up`` restarts the runtime against it instead of refusing."""
    return (_pid(config, "runtime") is None and _pid(config, "emulator") is not None
            and StackInfo.load(config) is not None and is_up(config.emulator_url))


def restart(config: StackConfig, *, say: Callable[[str], None] = print) -> StackInfo:
    """Restart the local runtime against the running emulator and the state it left:
    nothing is re-applied, the checkpoints under the state directory are kept, so each
    consumer goes on from its last checkpoint (what was delivered after it is delivered
    again, which every write tolerates)."""
    info = StackInfo.load(config)
    if info is None or _pid(config, "emulator") is None or not is_up(config.emulator_url):
        raise StackError(f"no running emulator with a deployment to restart against (state in {config.state_dir}); "
                         "its state lives in memory, so once it has stopped run `shopstream down && shopstream up`")
    if _stop_pid(config, "runtime"):
        say("• local runtime   stopped")
    for name, port in (("gateway", config.gateway_port), ("admin API", config.admin_port)):
        if not _wait_port_free(port):
            raise StackError(f"port {port} ({name}) is taken by another process; free it or choose another port")
    say(f"• local runtime   restarting against the running emulator (checkpoints kept); gateway on {config.api_url}")
    _start_runtime(config, info.outputs)
    return info


def _listener(port: int) -> str:
    """Which process listens on 127.0.0.1:port (Linux /proc; empty where it cannot say)."""
    inodes = set()
    try:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as fh:
                for row in fh.readlines()[1:]:
                    fields = row.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # LISTEN
                        inodes.add(fields[9])
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in {f"socket:[{i}]" for i in inodes}:
                        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:160]
                        return f" (pid {pid}: {command.strip()})"
            except OSError:
                continue
    except (OSError, ValueError, IndexError):
        pass
    return ""


def _wait_port_free(port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not _port_free(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def up(config: StackConfig, *, say: Callable[[str], None] = print) -> StackInfo:
    """Start the emulator, apply the Terraform, start the local runtime (or, when the
    emulator already runs with its deployment and only the runtime is gone, restart the
    runtime: :func:`restart`). An apply caught in the emulator's intermittent Lambda
    create hang (:class:`devstack.terraform.ApplyStuck`) is started over once, from a
    fresh emulator, and says so."""
    from devstack import terraform

    try:
        return _up(config, say=say)
    except terraform.ApplyStuck as exc:
        say(f"• terraform       {str(exc).splitlines()[0]}: the emulator's intermittent Lambda create hang; "
            "starting over once with a fresh emulator")
        return _up(config, say=say)


def _up(config: StackConfig, *, say: Callable[[str], None] = print) -> StackInfo:
    """Start the emulator, apply the Terraform, start the local runtime (or, when the
    emulator already runs with its deployment and only the runtime is gone, restart the
    runtime: :func:`restart`)."""
    if can_restart(config):
        say("• emulator        already up with its deployment")
        if config.warehouse_url:
            say("  (--warehouse is not applied: the running emulator keeps the warehouse it started with; "
                "`shopstream down` first to change it)")
        return restart(config, say=say)
    if is_running(config):
        raise StackError(f"the stack is already up (state in {config.state_dir}); `shopstream restart` restarts the "
                         "runtime, `shopstream down` stops everything")
    for name, port in (("emulator", config.emulator_port), ("gateway", config.gateway_port), ("admin API", config.admin_port)):
        if not _wait_port_free(port, timeout=5.0):  # a stack just stopped may still be letting go of it
            raise StackError(f"port {port} ({name}) is taken by another process{_listener(port)}; free it or "
                             "choose another port")
    if config.warehouse_url:
        _check_warehouse_url(config.warehouse_url)
    reset_state(config)
    for directory in (config.run_dir, config.log_dir, config.terraform_dir, config.runtime_dir):
        directory.mkdir(parents=True, exist_ok=True)

    where = _redacted(config.warehouse_url) if config.warehouse_url else f"DuckDB in {config.warehouse_dir}"
    say(f"• emulator        starting moto on {config.emulator_url} (warehouse: {where})")
    try:
        emulator = Emulator.start(config.emulator_port, log_path=str(config.log_dir / "emulator.log"),
                                  warehouse_url=config.warehouse_url, warehouse_dir=config.warehouse_dir,
                                  fresh_warehouse=True)
    except EmulatorError as exc:
        raise StackError(str(exc)) from exc
    _write_pid(config, "emulator", emulator.process.pid)  # type: ignore[union-attr]

    try:
        from devstack import terraform

        say("• terraform       apply infra/terraform to the emulator")
        started = time.monotonic()
        issuer = LocalIssuer.ensure(config.state_dir, config.api_url)
        auth = {"api_auth": config.auth, "jwt_issuer": issuer.issuer, "jwt_audience": [issuer.audience]}
        outputs = terraform.apply_to_emulator(
            config.emulator_url, str(config.terraform_dir),
            variables={**LOCAL_VARIABLES, "region": config.region, **auth}, say=say
        )
        terraform_s = round(time.monotonic() - started, 1)
        say(f"• local runtime   functions, event source mappings, gateway on {config.api_url}")
        _start_runtime(config, outputs)
    except BaseException:
        down(config, quiet=True)
        raise
    info = StackInfo(config.emulator_url, config.api_url, config.admin_url, config.region, outputs, terraform_s)
    info.save(config)
    return info


def _first_consumers(config: StackConfig, outputs: dict[str, Any]) -> tuple[str, ...]:
    """The stream consumers that go first while they are behind: the invoice writer, the
    sink the query API reads (the analytics consumers buffer for minutes on AWS anyway)."""
    name = (outputs.get("function_names") or {}).get("invoice-writer")
    return (name,) if name and config.precedence else ()


def _start_runtime(config: StackConfig, outputs: dict[str, Any], timeout: float = 60.0) -> None:
    log = open(config.log_dir / "runtime.log", "ab")
    env = dict(os.environ, PYTHONUNBUFFERED="1", **aws_env(config))
    env.pop("AWS_ENDPOINT_URL", None)  # the runtime hands it to the functions itself
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack.runtime",
         "--emulator-url", config.emulator_url, "--gateway-port", str(config.gateway_port),
         "--admin-port", str(config.admin_port), "--state-dir", str(config.state_dir), "--code-root", str(ROOT),
         "--schedule-period-cap", str(LOCAL_SCHEDULE_PERIOD_CAP), *(f"--first-consumer={n}" for n in _first_consumers(config, outputs))],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=str(ROOT), start_new_session=True,
    )
    _write_pid(config, "runtime", process.pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(f"the local runtime exited with code {process.returncode}; see {config.log_dir / 'runtime.log'}")
        try:
            if requests.get(f"{config.admin_url}/health", timeout=0.5).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.1)
    else:
        raise StackError(f"the local runtime did not become healthy within {timeout:.0f}s; see {config.log_dir / 'runtime.log'}")
    _wait_for_discovery(config, deadline)


def _wait_for_discovery(config: StackConfig, deadline: float) -> None:
    """Return once the runtime serves the HTTP API's routes and polls the stream, so
    that the first request after ``up`` is not a 404."""
    from devstack.runtime.client import RuntimeUnavailable, discover

    missing = "no discovery yet"
    while time.monotonic() < deadline:
        try:
            state = discover(config.admin_url)
        except RuntimeUnavailable as exc:
            missing = str(exc)
        else:
            routes = [route for api in state["gateway"]["apis"] for route in api.get("routes", [])]
            consumers = [c for c in state["consumers"] if c.get("shards")]
            if routes and consumers:
                return
            missing = f"{len(routes)} routes, {len(consumers)} stream consumers polling"
        time.sleep(0.2)
    raise StackError(f"the local runtime has not found the deployed resources ({missing}); see {config.log_dir / 'runtime.log'}")


def local_token(config: StackConfig, **who: Any) -> str | None:
    """A token of the stack's issuer (``customer=``, ``staff=True`` or ``producer=``), or None
    when the stack has no issuer yet."""
    issuer = LocalIssuer.load(config.state_dir)
    return issuer.token(**who) if issuer else None


def reset_state(config: StackConfig) -> None:
    """Forget what referred to a previous emulator's (in-memory) resources."""
    for stale in (config.terraform_dir / "terraform.tfstate", config.terraform_dir / "terraform.tfstate.backup"):
        stale.unlink(missing_ok=True)
    for directory in (config.runtime_dir, config.warehouse_dir):  # checkpoints, the DuckDB warehouse
        if directory.exists():
            shutil.rmtree(directory)
    (config.run_dir / "stack.json").unlink(missing_ok=True)


def down(config: StackConfig, *, quiet: bool = False, say: Callable[[str], None] = print) -> bool:
    """Stop the runtime, then the emulator. True if anything was running."""
    stopped_runtime = _stop_pid(config, "runtime")
    stopped_emulator = _stop_pid(config, "emulator")
    reset_state(config)
    if not quiet:
        say("stack stopped" if (stopped_runtime or stopped_emulator) else "the stack was not running")
    return stopped_runtime or stopped_emulator


def status(config: StackConfig) -> dict[str, Any]:
    info = StackInfo.load(config)
    runtime_status = None
    if _pid(config, "runtime") is not None:
        try:
            runtime_status = requests.get(f"{config.admin_url}/status", timeout=2).json()
        except (requests.RequestException, ValueError):
            runtime_status = None
    problems = []
    emulator_pid = _pid(config, "emulator")
    answering = is_up(config.emulator_url)
    if emulator_pid is None and (config.run_dir / "emulator.pid").exists():
        problems.append("the emulator's process has exited: the stream, tables and buckets it kept in memory are gone; "
                        "run `shopstream down && shopstream up` and replay")
    elif emulator_pid is not None and not answering:
        problems.append(f"the emulator (pid {emulator_pid}) does not answer on {config.emulator_url}")
    if info is not None and _pid(config, "runtime") is None:
        problems.append("the local runtime is not running: `shopstream restart` (or `shopstream up`) starts it against "
                        "the running emulator, from its checkpoints")
    seen_by_runtime = (runtime_status or {}).get("emulator") or {}
    if seen_by_runtime.get("lost_deployment"):
        problems.append(seen_by_runtime["lost_deployment"])
    unavailable = ((runtime_status or {}).get("gateway") or {}).get("unavailable")
    if unavailable and unavailable not in problems:
        problems.append(f"the HTTP API answers 503: {unavailable}")
    return {
        "ok": not problems and answering and runtime_status is not None,
        "problems": problems,
        "emulator": {"pid": emulator_pid, "url": config.emulator_url, "answering": answering},
        "runtime": {"pid": _pid(config, "runtime"), "admin_url": config.admin_url, "status": runtime_status},
        "api_url": config.api_url,
        "outputs": info.outputs if info else None,
    }
