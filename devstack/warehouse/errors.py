"""The local warehouse's errors: each names the statement and what was wrong with it."""
from __future__ import annotations


def excerpt(sql: str, limit: int = 600) -> str:
    """A statement as an error message shows it: on one line, cut at ``limit`` characters."""
    text = " ".join(sql.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class WarehouseError(RuntimeError):
    """A statement the local warehouse could not run.

    ``statement`` is the Redshift SQL as sent, ``reason`` the backend's (or the
    translator's) message, ``index`` the statement's position (0-based) in a batch.
    """

    def __init__(self, reason: str, *, statement: str, backend: str, index: int | None = None,
                 batch_size: int | None = None):
        self.reason = reason
        self.statement = statement
        self.backend = backend
        self.index = index
        if not statement:
            super().__init__(f"{backend}: {reason}")
            return
        where = "statement" if index is None else f"statement {index + 1} of {batch_size} in the batch"
        super().__init__(f"{backend}: {where} failed: {reason}\n  statement: {excerpt(statement)}")


class DialectError(ValueError):
    """Redshift SQL the local warehouse refuses to translate, rather than run it wrongly."""

    def __init__(self, reason: str, statement: str):
        self.reason = reason
        self.statement = statement
        super().__init__(f"{reason}\n  statement: {excerpt(statement)}")


class CopyError(ValueError):
    """A COPY that cannot be done: an unsupported option, a missing mandatory object, a
    malformed manifest. Raised before anything is loaded."""
