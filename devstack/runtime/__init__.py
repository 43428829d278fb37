"""The local runtime: runs shopstream's Lambda handlers on this machine, as Lambda would,
for what moto cannot execute without Docker.

It reads everything from the emulator (functions, Kinesis event source mappings, HTTP
APIs), runs each function in warm worker processes (:mod:`.workers`), polls Kinesis
shards for each enabled event source mapping with Lambda's batching, retry, bisect,
partial-batch and on-failure semantics (:mod:`.kinesis`), serves HTTP APIs as API
Gateway payload format 2.0 (:mod:`.gateway`), and reports its state on an admin port
(:mod:`.admin`, :mod:`.client`).

Imports are lazy so a worker process (``python -m devstack.runtime.worker``) loads only
the standard library before the handler.
"""
from __future__ import annotations

__all__ = ["LocalRuntime", "RuntimeConfig"]


def __getattr__(name: str):
    if name in __all__:
        from devstack.runtime import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
