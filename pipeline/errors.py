"""Error classes shared by every component.

The split that matters is terminal vs transient (see docs/ARCHITECTURE.md):

* ``InvalidEvent`` / ``SourceRowError`` are terminal: the input can never succeed, so it is
  rejected (400) or quarantined with its reason, and never blocks a shard.
* ``TransientError`` is worth retrying (throttling, timeouts, unprocessed items): consumers
  report it in ``batchItemFailures`` so the event source mapping redelivers.
* ``ConfigurationError`` means the deployment is wrong (missing env var, missing table).
"""
from __future__ import annotations

from dataclasses import dataclass


class ShopstreamError(Exception):
    """Base class of every error raised on purpose by shopstream."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one field of an input item."""

    field: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"field": _encodable(self.field), "reason": _encodable(self.reason)}


def _encodable(text: str) -> str:
    """Text that encodes as UTF-8 whatever the input held (a lone surrogate is escaped)."""
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class InvalidEvent(ShopstreamError):
    """An event (or raw row) that breaks the contract. Terminal: never retried."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(f"{_encodable(p.field)}: {_encodable(p.reason)}" for p in problems))


class SourceError(ShopstreamError):
    """A source file that cannot be read at all (missing, wrong columns, not a CSV)."""


@dataclass(frozen=True, slots=True)
class SourceRowError:
    """A row of a source file that could not be turned into part of an invoice."""

    source: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}"


class TransientError(ShopstreamError):
    """A failure worth retrying: throttling, timeouts, items DynamoDB left unprocessed."""


class RejectedWrite(ShopstreamError):
    """A write the store refuses for what it holds (a validation error): retrying the same
    items can never succeed, so the consumer sets the event aside instead."""


class ConfigurationError(ShopstreamError):
    """The deployment is wrong: a missing environment variable, table or stream."""


class NotFound(ShopstreamError):
    """The thing asked for does not exist (mapped to HTTP 404)."""


class BadRequest(ShopstreamError):
    """A request parameter is wrong (mapped to HTTP 400); names the parameter."""

    def __init__(self, field: str, reason: str):
        self.problem = Problem(field, reason)
        super().__init__(f"{field}: {reason}")


class CorruptRecord(ShopstreamError):
    """A Kinesis record whose KPL aggregation envelope is damaged. Terminal."""


class Unauthenticated(ShopstreamError):
    """No verified identity came with the request (mapped to HTTP 401, as API Gateway answers)."""


class Forbidden(ShopstreamError):
    """The caller is known but may not do this (mapped to HTTP 403); names the field."""

    def __init__(self, field: str, reason: str):
        self.problem = Problem(field, reason)
        super().__init__(f"{field}: {reason}")
