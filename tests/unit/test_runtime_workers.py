"""Worker processes: environment, context, outcomes, timeouts, payload limits (no network)."""
from __future__ import annotations

import json
import pathlib
import threading

import pytest

from devstack.runtime.model import INVOKE_PAYLOAD_LIMIT, FunctionSpec
from devstack.runtime.workers import Invoker, build_environment

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
EMULATOR = "http://127.0.0.1:4566"
ARN = "arn:aws:lambda:eu-west-1:123456789012:function:"


def spec(name: str, handler: str, **kw) -> FunctionSpec:
    kw.setdefault("role", "arn:aws:iam::123456789012:role/r")
    return FunctionSpec(name=name, arn=ARN + name, handler=f"tests.fixtures.handlers.{handler}", **kw)


@pytest.fixture
def invoker(tmp_path):
    inv = Invoker(code_root=REPO_ROOT, log_dir=tmp_path / "logs", emulator_url=EMULATOR)
    yield inv
    inv.close()


def test_the_environment_is_the_functions_plus_what_lambda_provides_and_nothing_else():
    env = build_environment(spec("orders", "echo", environment={"SHOPSTREAM_STREAM_NAME": "s", "AWS_REGION": "x"},
                                 memory_size=512),
                            code_root="/code", emulator_url=EMULATOR,
                            base={"PATH": "/bin", "HOME": "/root", "SECRET_TOKEN": "x", "PYTHONPATH": "/elsewhere",
                                  "AWS_PROFILE": "prod", "AWS_ENDPOINT_URL": "https://real"})
    assert env["SHOPSTREAM_STREAM_NAME"] == "s"
    assert env["AWS_ENDPOINT_URL"] == EMULATOR
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"  # reserved: the service sets it
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "orders" and env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST" and env["_HANDLER"] == "tests.fixtures.handlers.echo"
    assert env["LAMBDA_TASK_ROOT"] == "/code" and env["PYTHONPATH"].split(":")[0] == "/code"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/orders"
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} <= set(env)
    assert "SECRET_TOKEN" not in env and "AWS_PROFILE" not in env and env["PATH"] == "/bin"


def test_a_handler_runs_in_its_own_process_with_a_lambda_context(invoker):
    invoker.configure({"echo": spec("echo", "echo", environment={"GREETING": "hi"}, timeout=7)})
    first = invoker.invoke("echo", {"n": 1})
    second = invoker.invoke("echo", {"n": 2}, request_id="fixed-id")
    body = second.json()
    assert first.ok and first.cold_start and not second.cold_start
    assert body["event"] == {"n": 2}
    assert body["pid"] == first.json()["pid"] and body["warm_invocations"] == 2  # warm: module state kept
    assert body["env"]["GREETING"] == "hi" and body["env"]["AWS_ENDPOINT_URL"] == EMULATOR
    ctx = body["context"]
    assert ctx["aws_request_id"] == "fixed-id" and ctx["function_name"] == "echo"
    assert ctx["invoked_function_arn"] == ARN + "echo" and ctx["memory_limit_in_mb"] == "128"
    assert 0 < ctx["remaining_ms"] <= 7000
    assert body["cwd"] == str(REPO_ROOT)


def test_powertools_logger_injects_the_lambda_context(invoker, tmp_path):
    invoker.configure({"pt": spec("pt", "powertools_logged")})
    result = invoker.invoke("pt", {})
    assert result.ok, result.payload
    line = next(json.loads(entry) for entry in (tmp_path / "logs" / "pt.log").read_text().splitlines()
                if entry.startswith("{"))
    assert line["function_request_id"] == result.json()["request_id"] and line["function_name"] == "pt"


def test_handler_output_goes_to_the_function_log_not_the_channel(invoker, tmp_path):
    invoker.configure({"noisy": spec("noisy", "noisy")})
    result = invoker.invoke("noisy", {})
    assert result.ok and result.json() == {"noisy": True}
    log = (tmp_path / "logs" / "noisy.log").read_text()
    assert "hello on stderr" in log and "raw fd 1 write" in log and f"START RequestId: {result.request_id}" in log


@pytest.mark.parametrize("handler,error_type,message", [
    ("raises", "RuntimeError", "boom from the handler"),
    ("not_serialisable", "Runtime.MarshalError", "Unable to marshal response"),
    ("crash", "Runtime.ExitError", "Runtime exited with error: exit status 3"),
])
def test_failures_become_lambda_error_results(invoker, handler, error_type, message):
    invoker.configure({"f": spec("f", handler)})
    result = invoker.invoke("f", {})
    error = result.json()
    assert result.function_error == "Unhandled" and not result.ok
    assert error["errorType"] == error_type and message in error["errorMessage"]
    assert set(error) >= {"errorMessage", "errorType", "stackTrace"}


def test_an_exception_carries_the_handlers_stack_trace(invoker):
    invoker.configure({"f": spec("f", "raises")})
    trace = invoker.invoke("f", {}).json()["stackTrace"]
    assert any("handlers.py" in frame and "raises" in frame for frame in trace)
    assert not any("worker.py" in frame for frame in trace)


def test_an_import_error_is_reported_as_lambda_does(invoker):
    invoker.configure({"f": FunctionSpec(name="f", arn=ARN + "f", handler="tests.fixtures.missing_module.handler")})
    error = invoker.invoke("f", {}).json()
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert "Unable to import module 'tests.fixtures.missing_module'" in error["errorMessage"]


def test_a_timeout_kills_the_worker_and_the_next_call_cold_starts(invoker):
    invoker.configure({"slow": spec("slow", "sleepy", timeout=1, environment={"SLEEP_SECONDS": "30"})})
    first = invoker.invoke("slow", {})
    assert first.timed_out and first.error_type == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in first.json()["errorMessage"]
    [status] = invoker.status()
    assert status["timeouts"] == 1 and status["warm_workers"] == 0
    assert invoker.invoke("slow", {}).cold_start


def test_a_dead_worker_is_replaced(invoker):
    invoker.configure({"c": spec("c", "crash"), "e": spec("e", "echo")})
    assert invoker.invoke("c", {}).error_type == "Runtime.ExitError"
    assert invoker.invoke("c", {}).cold_start  # a fresh process, not the dead one


def test_requests_over_6_mb_are_refused_without_running_the_function(invoker):
    invoker.configure({"s": spec("s", "sized")})
    result = invoker.invoke("s", {"blob": "x" * INVOKE_PAYLOAD_LIMIT})
    assert result.service_error == "RequestEntityTooLargeException" and invoker.status()[0]["invocations"] == 0


def test_large_payloads_cross_intact(invoker):
    invoker.configure({"s": spec("s", "sized")})
    text = "£é" * 250_000  # non-ASCII survives the JSON round trip
    result = invoker.invoke("s", json.dumps({"blob": text, "echo": True}, ensure_ascii=False).encode())
    assert result.ok and result.json() == {"length": len(text), "blob": text}
    big = "y" * (5 * 1024 * 1024)
    result = invoker.invoke("s", {"blob": big, "echo": True})
    assert result.ok and result.json()["length"] == len(big) and result.json()["blob"] == big


def test_responses_over_6_mb_are_a_function_error(invoker):
    invoker.configure({"b": spec("b", "big_response")})
    result = invoker.invoke("b", {"size": 7 * 1024 * 1024})
    assert result.error_type == "Function.ResponseSizeTooLarge" and result.function_error == "Unhandled"


def test_reserved_concurrency_zero_throttles(invoker):
    invoker.configure({"t": spec("t", "trivial", reserved_concurrency=0)})
    assert invoker.invoke("t", {}).service_error == "TooManyRequestsException"


def test_two_invocations_run_in_two_workers_at_once(invoker):
    invoker.configure({"slow": spec("slow", "sleepy", environment={"SLEEP_SECONDS": "0.5"})})
    results = []
    threads = [threading.Thread(target=lambda: results.append(invoker.invoke("slow", {}))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 2 and all(r.ok and r.cold_start for r in results)
    assert invoker.status()[0]["warm_workers"] == 2


def test_a_changed_configuration_gets_fresh_workers(invoker):
    invoker.configure({"echo": spec("echo", "echo", environment={"V": "1"})})
    assert invoker.invoke("echo", {}).json()["env"]["V"] == "1"
    invoker.configure({"echo": spec("echo", "echo", environment={"V": "2"})})
    result = invoker.invoke("echo", {})
    assert result.cold_start and result.json()["env"]["V"] == "2"


def test_an_unknown_function_is_resource_not_found(invoker):
    assert invoker.invoke("nope", {}).service_error == "ResourceNotFoundException"
