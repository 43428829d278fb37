"""What the local stack's SNS topics were sent (the emulator keeps it: ``devstack/emulator/published.py``).

``shopstream notifications`` prints the large-orders topic's messages (``--topic alerts``:
the alarms' topic), oldest first; tests read the same list with :func:`fetch`."""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from devstack.emulator.published import CONTROL_PATH

# --topic NAME → the Terraform output holding the topic's ARN
TOPICS = {"large-orders": "large_orders_topic_arn", "file-outcomes": "file_outcomes_topic_arn",
          "alerts": "alerts_topic_arn"}


class NotificationsError(RuntimeError):
    pass


def _call(emulator_url: str, topic_arn: str, method: str) -> dict[str, Any]:
    url = f"{emulator_url.rstrip('/')}{CONTROL_PATH}?{urllib.parse.urlencode({'topic_arn': topic_arn})}"
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        raise NotificationsError(f"the emulator answered {exc.code} for {topic_arn}: {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise NotificationsError(f"the emulator at {emulator_url} did not answer: {exc}") from exc


def fetch(emulator_url: str, topic_arn: str) -> list[dict[str, Any]]:
    """Every message the topic was sent, oldest first."""
    return _call(emulator_url, topic_arn, "GET")["messages"]


def clear(emulator_url: str, topic_arn: str) -> int:
    """Forgets what the topic was sent; how many messages that was."""
    return _call(emulator_url, topic_arn, "DELETE")["forgotten"]


def format_messages(topic: str, messages: list[dict[str, Any]]) -> str:
    if not messages:
        return f"{topic}: nothing published yet"
    lines = [f"{topic}: {len(messages)} message{'s' if len(messages) != 1 else ''} published, oldest first"]
    for n, message in enumerate(messages, 1):
        lines.append(f"{n:>5}  {message['subject'] or '(no subject)'}  [{message['message_id']}]")
    return "\n".join(lines)
