"""The admin HTTP endpoint (127.0.0.1:<admin_port>), an ASGI app served by uvicorn.

- ``GET /health`` → ``{"status": "ok"}``
- ``GET /status`` → :meth:`devstack.runtime.runtime.LocalRuntime.status`
- ``POST /discover`` → read the emulator now (instead of within 2 s), then the status
- ``POST /functions/<name>/reset`` → recycle that function's workers (next call cold-starts,
  e.g. after editing handler code); ``POST /functions/reset`` recycles all
- ``POST /schedules/<rule>/run`` → run a scheduled rule's targets now (404 if unknown)
"""
from __future__ import annotations

import asyncio
import json
from typing import Any


class AdminApp:
    def __init__(self, runtime) -> None:
        self.runtime = runtime

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        while True:  # drain the request body
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        status, body = await self.route(scope["method"], scope["path"].rstrip("/") or "/")
        data = json.dumps(body, default=str).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": data})

    async def route(self, method: str, path: str) -> tuple[int, Any]:
        rt = self.runtime
        loop = asyncio.get_running_loop()
        if path == "/health" and method in ("GET", "HEAD"):
            return 200, {"status": "ok"}
        if path == "/status" and method in ("GET", "HEAD"):
            return 200, rt.status()
        if path == "/discover" and method == "POST":
            found = await loop.run_in_executor(None, rt.discover_now)
            status = rt.status()
            return (200 if found is not None else 503), status
        if path.startswith("/functions/") and path.endswith("/reset") and method == "POST":
            name = path[len("/functions/"):-len("/reset")].strip("/") or None
            await loop.run_in_executor(None, rt.invoker.reset, name)
            return 200, {"reset": name or "all"}
        if path.startswith("/schedules/") and path.endswith("/run") and method == "POST":
            name = path[len("/schedules/"):-len("/run")].strip("/")
            if rt.run_schedule(name):
                return 202, {"run": name}
            return 404, {"message": f"no scheduled rule {name!r}"}
        return 404, {"message": "Not Found"}
