"""A Lambda execution environment: ``python -m devstack.runtime.worker REQ_FD RESP_FD``.

The runtime starts one of these per concurrent execution of a function, with the
function's environment (see :mod:`devstack.runtime.workers`), its working directory set
to the code root, stdout/stderr appended to the function's log file, and two private
pipes (descriptors given on the command line) for invocations. It imports the handler
once (the init phase, as a cold start does), then serves invocations one at a time,
staying warm between them, until the request pipe closes.

What the handler sees is what the Lambda Python runtime gives it: the event decoded from
JSON, a context object with the attributes of ``awslambdaric``'s ``LambdaContext``
(``memory_limit_in_mb`` is a string there too), a root logger whose handler prefixes
``[LEVEL]\\ttime\\trequest-id``, and ``_X_AMZN_TRACE_ID`` set per invocation. Results
cross back as JSON (``Decimal`` allowed, as the Lambda marshaller allows it); anything
else is a ``Runtime.MarshalError``, as on AWS.

Only the standard library is imported here, so a worker's module state is the handler's.
"""
from __future__ import annotations

import decimal
import importlib
import json
import logging
import os
import sys
import time
import traceback
import uuid

from devstack.runtime import ipc


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, data: dict | None = None) -> None:
        data = data or {}
        self.cognito_identity_id = data.get("cognitoIdentityId")
        self.cognito_identity_pool_id = data.get("cognitoIdentityPoolId")


class Client:
    __slots__ = ("installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name")

    def __init__(self, data: dict) -> None:
        for name in self.__slots__:
            setattr(self, name, data.get(name))


class ClientContext:
    __slots__ = ("custom", "env", "client")

    def __init__(self, data: dict) -> None:
        self.custom = data.get("custom")
        self.env = data.get("env")
        self.client = Client(data["client"]) if isinstance(data.get("client"), dict) else None


class LambdaContext:
    """The context object of the Lambda Python runtime."""

    def __init__(self, request_id: str, deadline_ms: int, invoked_function_arn: str,
                 client_context: dict | None = None, identity: dict | None = None) -> None:
        env = os.environ
        self.aws_request_id = request_id
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.invoked_function_arn = invoked_function_arn
        self.identity = CognitoIdentity(identity)
        self.client_context = ClientContext(client_context) if client_context else None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def __repr__(self) -> str:
        return (f"LambdaContext(aws_request_id={self.aws_request_id}, function_name={self.function_name}, "
                f"function_version={self.function_version}, invoked_function_arn={self.invoked_function_arn})")


_current_request_id = ""


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _current_request_id
        return True


def _setup_logging() -> None:
    """A root handler like the Lambda runtime's, so ``logging.basicConfig`` is a no-op here
    as it is on AWS and plain ``logging`` calls come out in Lambda's text format."""
    logging.Formatter.converter = time.gmtime
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s", "%Y-%m-%dT%H:%M:%S"))
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL")
    if level and level.upper() in logging._nameToLevel:  # noqa: SLF001 - same lookup logging uses
        root.setLevel(level.upper())


def make_error(message: str, error_type: str, stack: list[str] | None = None, request_id: str = "") -> dict:
    return {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": stack or []}


def _user_frames(tb) -> list[str]:
    frames = traceback.extract_tb(tb)
    here = os.path.abspath(__file__)
    frames = [f for f in frames if os.path.abspath(f.filename) != here]
    return traceback.format_list(frames)


def load_handler(handler: str):
    """Import ``module.function`` (``dir/module.function`` accepted, as Lambda does)."""
    try:
        module_name, function_name = handler.rsplit(".", 1)
    except ValueError:
        raise _Fault("Runtime.MalformedHandlerName", f"Bad handler '{handler}': not enough values to unpack") from None
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise _Fault("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}") from None
    except SyntaxError as exc:
        raise _Fault("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}",
                     [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']) from None
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise _Fault("Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'") from None


class _Fault(Exception):
    def __init__(self, error_type: str, message: str, stack: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.stack = stack or []


def _json_default(obj):
    if isinstance(obj, decimal.Decimal):
        if obj.is_nan():
            return float("nan")
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _log_error(error: dict) -> None:
    lines = [f"[ERROR] {error['errorType']}: {error['errorMessage']}"]
    if error.get("stackTrace"):
        lines.append("Traceback (most recent call last):")
        lines.extend(line.rstrip("\n") for line in error["stackTrace"])
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def serve(req_fd: int, resp_fd: int) -> int:
    global _current_request_id
    _setup_logging()
    handler_name = os.environ.get("_HANDLER", "")
    started = time.perf_counter()
    init_error = None
    handler = None
    try:
        handler = load_handler(handler_name)
    except _Fault as fault:
        init_error = make_error(fault.message, fault.error_type, fault.stack)
    except Exception as exc:  # the module raised while importing: an init error, as on AWS
        init_error = make_error(str(exc), type(exc).__name__, _user_frames(exc.__traceback__))
    init_ms = (time.perf_counter() - started) * 1000
    if init_error is not None:
        _log_error(init_error)
    ipc.write_frame(resp_fd, {"status": "ready" if init_error is None else "init_error", "init_ms": init_ms})

    version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    while True:
        try:
            meta, payload = ipc.read_frame(req_fd)
        except (ipc.ChannelClosed, OSError):
            return 0
        request_id = meta.get("request_id") or str(uuid.uuid4())
        _current_request_id = request_id
        os.environ["_X_AMZN_TRACE_ID"] = meta.get("trace_id") or f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0"
        sys.stdout.write(f"START RequestId: {request_id} Version: {version}\n")
        sys.stdout.flush()
        began = time.perf_counter()
        if init_error is not None:
            status, body = "error", json.dumps(dict(init_error, requestId=request_id)).encode()
        else:
            status, body = _invoke(handler, payload, meta, request_id)
        duration = (time.perf_counter() - began) * 1000
        sys.stdout.write(f"END RequestId: {request_id}\n"
                         f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
                         f"Memory Size: {os.environ.get('AWS_LAMBDA_FUNCTION_MEMORY_SIZE', '?')} MB\n")
        sys.stdout.flush()
        try:
            ipc.write_frame(resp_fd, {"status": status, "duration_ms": duration}, body)
        except OSError:
            return 0
        _current_request_id = ""
        if init_error is not None:
            return 1  # as Lambda does, the next invocation initialises a fresh environment


def _invoke(handler, payload: bytes, meta: dict, request_id: str) -> tuple[str, bytes]:
    try:
        event = json.loads(payload) if payload else None
    except ValueError as exc:
        error = make_error(f"Unable to unmarshal input: {exc}", "Runtime.UnmarshalError", None, request_id)
        _log_error(error)
        return "error", json.dumps(error).encode()
    context = LambdaContext(request_id, int(meta.get("deadline_ms") or 0), meta.get("invoked_function_arn", ""),
                            meta.get("client_context"), meta.get("identity"))
    try:
        result = handler(event, context)
    except Exception as exc:
        error = make_error(str(exc), type(exc).__name__, _user_frames(exc.__traceback__), request_id)
        _log_error(error)
        return "error", json.dumps(error, default=str).encode()
    try:
        if isinstance(result, (bytes, bytearray)):
            return "ok", bytes(result)
        return "ok", json.dumps(result, default=_json_default).encode()
    except (TypeError, ValueError) as exc:
        error = make_error(f"Unable to marshal response: {exc}", "Runtime.MarshalError", None, request_id)
        _log_error(error)
        return "error", json.dumps(error).encode()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        sys.stderr.write("usage: python -m devstack.runtime.worker REQ_FD RESP_FD\n")
        return 2
    req_fd, resp_fd = int(args[0]), int(args[1])
    return serve(req_fd, resp_fd)


if __name__ == "__main__":
    sys.exit(main())
