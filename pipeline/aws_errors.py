"""AWS errors translated at the adapter edge, one way for every adapter.

* throttling, service-side failures (HTTP 5xx) and transport errors (timeouts, refused
  connections) are :class:`~pipeline.errors.TransientError`: retrying may succeed;
* a missing resource (stream, table, bucket, queue) and refused access are
  :class:`~pipeline.errors.ConfigurationError`: the deployment is wrong, and retrying the
  same call will not fix it (access denied is never treated as transient);
* anything else (a validation error, a conditional check) is returned unchanged for the
  caller to handle or re-raise: it is a domain result or a bug, not a retry.

Usage: ``except (ClientError, BotoCoreError) as exc: raise translate(exc, "PutObject s3://b/k") from exc``.
"""
from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from pipeline.errors import ConfigurationError, TransientError

THROTTLING_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "Throttling", "ThrottledException",
    "LimitExceededException", "RequestLimitExceeded", "TooManyRequestsException", "SlowDown",
    "RequestThrottled", "RequestThrottledException", "InternalFailure", "InternalError", "InternalServerError",
    "ServiceUnavailable", "ServiceUnavailableException", "RequestTimeout", "RequestTimeoutException",
})
MISSING_CODES = frozenset({
    "ResourceNotFoundException", "NoSuchBucket", "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist",
    "NotFoundException", "NoSuchEntity",
})
DENIED_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException",
    "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException", "KMSAccessDeniedException",
})


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "") or ""


def translate(exc: Exception, what: str) -> Exception:
    """The error to raise for ``exc`` (from ``what``, e.g. ``"PutRecords on stream s"``)."""
    if isinstance(exc, BotoCoreError):
        return TransientError(f"{what} failed: {exc}")
    if not isinstance(exc, ClientError):
        return exc
    code = error_code(exc)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0
    if code in MISSING_CODES:
        return ConfigurationError(f"{what}: {code}: it does not exist (check its name and region)")
    if code in DENIED_CODES:
        return ConfigurationError(f"{what}: {code} (check the function's permissions)")
    if code in THROTTLING_CODES or status >= 500:
        return TransientError(f"{what} throttled or failed: {code or status}")
    return exc
