"""S3 event notifications to Lambda, delivered locally.

moto stores a bucket's notification configuration (``GetBucketNotificationConfiguration``
returns its ``LambdaFunctionConfigurations``) but cannot invoke a function. For every
bucket with a Lambda configuration the runtime keeps a thread that lists the bucket about
twice a second and, for each object it has not seen (by key, ETag and last-modified time,
so the same bytes uploaded again under the same key are a new event, as on S3), invokes
each matching configuration's function with S3's own event: one record,
``eventVersion`` 2.1, ``eventSource`` ``aws:s3``, ``eventName`` ``ObjectCreated:Put``, the
key URL-encoded as S3 encodes it (``quote_plus``), its size, ETag and a sequencer.
Prefix and suffix filters and the event-name patterns (``s3:ObjectCreated:*``) are
honoured; other event types are not delivered locally.

Deliveries of one bucket run one at a time, in key order; a failed invocation is retried
twice (S3 invokes asynchronously, and Lambda retries an asynchronous invocation twice),
then logged. What was seen is kept in the runtime's state directory
(``s3-notifications/<bucket>.json``), so a restarted runtime does not deliver again what
it delivered; an object that leaves the bucket is forgotten.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from devstack.runtime.esm import FunctionInvoker

log = logging.getLogger("devstack.runtime.s3_notifications")

ASYNC_RETRIES = 2
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class LambdaNotification:
    config_id: str
    function_arn: str
    events: tuple[str, ...]
    prefix: str = ""
    suffix: str = ""

    def matches(self, key: str, event_name: str = "s3:ObjectCreated:Put") -> bool:
        wanted = any(event_name == e or (e.endswith("*") and event_name.startswith(e[:-1])) for e in self.events)
        return wanted and key.startswith(self.prefix) and key.endswith(self.suffix)


@dataclass(frozen=True)
class BucketNotificationSpec:
    bucket: str
    region: str
    notifications: tuple[LambdaNotification, ...]

    def fingerprint(self) -> tuple:
        return (self.region, self.notifications)

    @classmethod
    def from_api(cls, bucket: str, region: str, config: dict[str, Any]) -> BucketNotificationSpec | None:
        out = []
        for item in config.get("LambdaFunctionConfigurations") or []:
            rules = ((item.get("Filter") or {}).get("Key") or {}).get("FilterRules") or []
            by_name = {r.get("Name", "").lower(): r.get("Value", "") for r in rules}
            out.append(LambdaNotification(item.get("Id") or "", item["LambdaFunctionArn"], tuple(item.get("Events") or ()),
                                          by_name.get("prefix", ""), by_name.get("suffix", "")))
        return cls(bucket, region, tuple(out)) if out else None


def discover_bucket_notifications(clients) -> dict[str, BucketNotificationSpec]:
    s3 = clients("s3")
    out: dict[str, BucketNotificationSpec] = {}
    for bucket in s3.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        try:
            config = s3.get_bucket_notification_configuration(Bucket=name)
        except Exception as exc:  # a bucket deleted meanwhile
            log.debug("GetBucketNotificationConfiguration failed for %s: %s", name, exc)
            continue
        spec = BucketNotificationSpec.from_api(name, clients.region, config)
        if spec is not None:
            out[name] = spec
    return out


def s3_event(spec: BucketNotificationSpec, notification: LambdaNotification, obj: dict[str, Any]) -> bytes:
    """The event S3 sends a function for one created object."""
    modified = obj.get("LastModified")
    when = modified.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" if modified is not None else \
        time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return json.dumps({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": spec.region, "eventTime": when,
        "eventName": "ObjectCreated:Put", "userIdentity": {"principalId": "AWS:LOCALSTACKUSER"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper(), "x-amz-id-2": uuid.uuid4().hex},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": notification.config_id,
               "bucket": {"name": spec.bucket, "ownerIdentity": {"principalId": "LOCAL"},
                          "arn": f"arn:aws:s3:::{spec.bucket}"},
               "object": {"key": quote_plus(obj["Key"], safe="/"), "size": int(obj.get("Size") or 0),
                          "eTag": (obj.get("ETag") or "").strip('"'),
                          "sequencer": format(time.time_ns(), "X")}},
    }]}).encode()


class S3NotificationRunner:
    def __init__(self, spec: BucketNotificationSpec, invoker: FunctionInvoker, s3: Any, state_dir: Path, *,
                 poll_seconds: float = POLL_SECONDS, retry_delay: float = 1.0):
        self.spec, self.invoker, self.s3 = spec, invoker, s3
        self.poll_seconds, self.retry_delay = poll_seconds, retry_delay
        self._path = state_dir / "s3-notifications" / f"{spec.bucket}.json"
        self._seen: dict[str, str] = self._load()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self.delivered = self.failures = 0
        self.last_error: str | None = None

    def _load(self) -> dict[str, str]:
        try:
            return json.loads(self._path.read_text())
        except (OSError, ValueError):
            return {}

    def _save(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._seen))
        os.replace(tmp, self._path)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"s3-notify-{self.spec.bucket}", daemon=True)
        self._thread.start()

    def update(self, spec: BucketNotificationSpec) -> None:
        self.spec = spec

    def stop(self) -> None:
        self._halt.set()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _listing(self) -> list[dict[str, Any]]:
        objects: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"Bucket": self.spec.bucket}
        while True:
            page = self.s3.list_objects_v2(**kwargs)
            objects.extend(page.get("Contents", []))
            if not page.get("IsTruncated"):
                return objects
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def poll_once(self) -> int:
        """Deliver what is new; how many objects were."""
        objects = self._listing()
        present = {o["Key"] for o in objects}
        forgotten = [k for k in self._seen if k not in present]
        for key in forgotten:
            del self._seen[key]
        new = 0
        for obj in sorted(objects, key=lambda o: (o.get("LastModified") or 0, o["Key"])):
            identity = f"{obj.get('ETag')}@{obj.get('LastModified')}"
            if self._seen.get(obj["Key"]) == identity or self._halt.is_set():
                continue
            for notification in self.spec.notifications:
                if notification.matches(obj["Key"]):
                    self._deliver(notification, obj)
            self._seen[obj["Key"]] = identity
            self._save()
            new += 1
        if forgotten and not new:
            self._save()
        return new

    def _deliver(self, notification: LambdaNotification, obj: dict[str, Any]) -> None:
        payload = s3_event(self.spec, notification, obj)
        for attempt in range(ASYNC_RETRIES + 1):
            try:
                outcome = self.invoker.invoke(notification.function_arn, payload)
                if outcome.ok:
                    self.delivered += 1
                    return
                error = f"{outcome.error_type or outcome.service_error}: {outcome.error_message}"
            except Exception as exc:  # the invoker itself
                error = f"{type(exc).__name__}: {exc}"
            log.warning("S3 notification failed bucket=%s key=%s function=%s attempt=%d: %s", self.spec.bucket,
                        obj["Key"], notification.function_arn, attempt + 1, error)
            if attempt == ASYNC_RETRIES or self._halt.wait(self.retry_delay * (attempt + 1)):
                self.failures += 1
                self.last_error = error
                return

    def _run(self) -> None:
        while not self._halt.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # the emulator briefly away: try again next poll
                log.debug("listing bucket %s failed: %s", self.spec.bucket, exc)
            self._halt.wait(self.poll_seconds)

    def status(self) -> dict[str, Any]:
        return {"kind": "s3-notifications", "bucket": self.spec.bucket, "delivered": self.delivered,
                "failures": self.failures, "last_error": self.last_error,
                "notifications": [{"id": n.config_id, "function": n.function_arn, "events": list(n.events),
                                   "prefix": n.prefix, "suffix": n.suffix} for n in self.spec.notifications]}
