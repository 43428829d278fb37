"""The private channel between the runtime and a worker process (stdlib only).

A frame is ``struct("!II", meta_len, payload_len)`` followed by ``meta`` (a small JSON
object: request id, deadline, status...) and ``payload`` (the event or the result, JSON
bytes exactly as Lambda would carry them). Keeping the payload out of the meta object
means a multi-megabyte event is encoded once and copied through the pipe as bytes.

The channel is a pair of anonymous pipes whose descriptors the worker receives on its
command line, so whatever the handler prints on stdout/stderr never reaches it.
"""
from __future__ import annotations

import json
import os
import select
import struct
import time

HEADER = struct.Struct("!II")
PIPE_SIZE = 1 << 20  # ask Linux for 1 MiB pipes: fewer wake-ups for large payloads


class ChannelClosed(EOFError):
    """The other end closed the pipe (the process exited)."""


class ChannelTimeout(TimeoutError):
    """No complete frame arrived before the deadline."""


def enlarge_pipe(fd: int) -> None:
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_SIZE)
    except (OSError, ImportError, AttributeError):  # not Linux, or over pipe-max-size
        pass


def write_frame(fd: int, meta: dict, payload: bytes = b"") -> None:
    meta_bytes = json.dumps(meta, separators=(",", ":")).encode()
    buffers = [HEADER.pack(len(meta_bytes), len(payload)), meta_bytes, payload]
    total = sum(len(b) for b in buffers)
    written = os.writev(fd, buffers)
    if written == total:
        return
    view = memoryview(b"".join(buffers))[written:]
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes:
    if size == 0:
        return b""
    buf = bytearray(size)
    view = memoryview(buf)
    got = 0
    poller = None
    while got < size:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChannelTimeout()
            if poller is None:
                poller = select.poll()
                poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
            if not poller.poll(max(1, int(remaining * 1000 + 0.999))):
                continue
        n = os.readv(fd, [view[got:]])
        if n == 0:
            raise ChannelClosed()
        got += n
    return bytes(buf)


def read_frame(fd: int, deadline: float | None = None) -> tuple[dict, bytes]:
    """Read one frame; ``deadline`` is a ``time.monotonic()`` value (None: wait forever)."""
    meta_len, payload_len = HEADER.unpack(_read_exact(fd, HEADER.size, deadline))
    meta = json.loads(_read_exact(fd, meta_len, deadline))
    payload = _read_exact(fd, payload_len, deadline)
    return meta, payload
