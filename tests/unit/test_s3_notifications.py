"""The runtime's S3 event notifications (devstack/runtime/s3_notifications.py), with a fake bucket and invoker."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

from devstack.runtime.s3_notifications import BucketNotificationSpec, S3NotificationRunner

CONFIG = {"LambdaFunctionConfigurations": [
    {"Id": "transactions", "LambdaFunctionArn": "arn:aws:lambda:eu-west-1:123456789012:function:shop-batch",
     "Events": ["s3:ObjectCreated:*"], "Filter": {"Key": {"FilterRules": [{"Name": "Prefix", "Value": "transactions/"}]}}},
    {"Id": "csv-only", "LambdaFunctionArn": "arn:aws:lambda:eu-west-1:123456789012:function:other",
     "Events": ["s3:ObjectRemoved:*"], "Filter": {"Key": {"FilterRules": [{"Name": "Suffix", "Value": ".csv"}]}}},
]}


class Bucket:
    def __init__(self) -> None:
        self.objects: dict[str, dict] = {}

    def put(self, key: str, size: int, etag: str, second: int) -> None:
        self.objects[key] = {"Key": key, "Size": size, "ETag": f'"{etag}"',
                             "LastModified": datetime(2026, 12, 2, 12, 0, second, tzinfo=UTC)}

    def list_objects_v2(self, **kwargs):
        return {"Contents": list(self.objects.values()), "IsTruncated": False}


class Invoker:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def invoke(self, function, payload, request_id=None):
        self.calls.append((function, json.loads(payload)))
        return SimpleNamespace(ok=True)


def runner(tmp_path, bucket, invoker):
    spec = BucketNotificationSpec.from_api("drops", "eu-west-1", CONFIG)
    return S3NotificationRunner(spec, invoker, bucket, tmp_path)


def test_each_new_object_matching_a_configuration_is_one_s3_event_of_the_real_shape(tmp_path):
    bucket, invoker = Bucket(), Invoker()
    bucket.put("transactions/year=2011/month=03/day=15/online retail £.csv", 1234, "abc", 1)
    bucket.put("elsewhere/x.csv", 1, "def", 2)  # no configuration for its prefix and event
    assert runner(tmp_path, bucket, invoker).poll_once() == 2
    [(function, event)] = invoker.calls
    assert function.endswith(":function:shop-batch")
    [record] = event["Records"]
    assert (record["eventVersion"], record["eventSource"], record["eventName"]) == ("2.1", "aws:s3", "ObjectCreated:Put")
    assert record["s3"]["configurationId"] == "transactions" and record["s3"]["bucket"]["name"] == "drops"
    assert record["s3"]["object"]["key"] == "transactions/year%3D2011/month%3D03/day%3D15/online+retail+%C2%A3.csv"
    assert (record["s3"]["object"]["size"], record["s3"]["object"]["eTag"]) == (1234, "abc")
    assert record["eventTime"] == "2026-12-02T12:00:01.000Z"


def test_a_restarted_runtime_does_not_deliver_again_but_the_same_key_uploaded_again_is_new(tmp_path):
    bucket, invoker = Bucket(), Invoker()
    bucket.put("transactions/a.csv", 10, "abc", 1)
    runner(tmp_path, bucket, invoker).poll_once()
    # WHEN a new runtime (same state directory) polls the same bucket
    assert runner(tmp_path, bucket, invoker).poll_once() == 0
    assert len(invoker.calls) == 1
    # WHEN the object leaves and the same bytes come back under the same key
    del bucket.objects["transactions/a.csv"]
    again = runner(tmp_path, bucket, invoker)
    again.poll_once()
    bucket.put("transactions/a.csv", 10, "abc", 5)
    assert again.poll_once() == 1 and len(invoker.calls) == 2


def test_a_failing_function_is_retried_twice_then_counted(tmp_path):
    bucket = Bucket()
    bucket.put("transactions/a.csv", 10, "abc", 1)

    class Failing(Invoker):
        def invoke(self, function, payload, request_id=None):
            self.calls.append((function, json.loads(payload)))
            return SimpleNamespace(ok=False, error_type="Boom", service_error=None, error_message="no")

    invoker = Failing()
    r = runner(tmp_path, bucket, invoker)
    r.retry_delay = 0.0
    r.poll_once()
    assert len(invoker.calls) == 3 and r.failures == 1 and "Boom" in r.last_error
