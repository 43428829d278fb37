"""The emulator's fault injector: rules installed over HTTP make real AWS calls fail the way
AWS does (partial batch failures, throttles, a failing PutObject), and nothing else."""
from __future__ import annotations

import uuid

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from devstack.emulator.faults import CONTROL_PATH

pytestmark = pytest.mark.emulator

NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1}, s3={"addressing_style": "path"})


@pytest.fixture
def faults(emulator):
    url = emulator.endpoint_url + CONTROL_PATH

    def install(*rules):
        response = requests.post(url, json=list(rules), timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    install.url = url
    install.rules = lambda: requests.get(url, timeout=10).json()["rules"]
    yield install
    requests.delete(url, timeout=10)


def client(emulator, service):
    return boto3.client(service, endpoint_url=emulator.endpoint_url, region_name="eu-west-1", config=NO_RETRIES)


def test_some_put_records_entries_fail_with_a_throughput_error_and_only_the_others_are_written(emulator, faults):
    kinesis = client(emulator, "kinesis")
    name = f"faults-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=name, ShardCount=1)
    faults({"action": "Kinesis.PutRecords", "mode": "partial", "every": 2, "times": 1})
    entries = [{"Data": f"record-{n}".encode(), "PartitionKey": str(n)} for n in range(4)]
    # WHEN four records are put while the rule holds, and four more once it is spent
    first = kinesis.put_records(StreamName=name, Records=entries)
    second = kinesis.put_records(StreamName=name, Records=entries)
    # THEN the 2nd and 4th entries of the first call failed as a throttled shard answers
    assert first["FailedRecordCount"] == 2
    assert [e.get("ErrorCode") for e in first["Records"]] == [
        None, "ProvisionedThroughputExceededException", None, "ProvisionedThroughputExceededException"]
    assert all("SequenceNumber" in first["Records"][n] for n in (0, 2))
    assert second["FailedRecordCount"] == 0
    # AND the stream holds exactly what was acknowledged
    shard = kinesis.list_shards(StreamName=name)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    data = [r["Data"] for r in kinesis.get_records(ShardIterator=iterator["ShardIterator"])["Records"]]
    assert data == [b"record-0", b"record-2", b"record-0", b"record-1", b"record-2", b"record-3"]
    rule = faults.rules()[0]
    assert (rule["fired"], rule["entries_failed"], rule["spent"]) == (1, 2, True)


def test_batch_write_item_returns_unprocessed_items_and_a_throttle_fails_the_whole_call(emulator, faults):
    dynamodb = client(emulator, "dynamodb")
    table = f"faults-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}])
    faults({"action": "DynamoDB.BatchWriteItem", "mode": "partial", "every": 3, "times": 1},
           {"action": "DynamoDB.BatchWriteItem", "code": "ProvisionedThroughputExceededException",
            "status": 400, "times": 1})
    puts = [{"PutRequest": {"Item": {"k": {"S": f"item-{n}"}}}} for n in range(6)]
    # WHEN six items are written in one call (botocore checks the rewritten answer's CRC32)
    answer = dynamodb.batch_write_item(RequestItems={table: puts})
    # THEN the 3rd and 6th come back unprocessed and the other four are stored
    assert answer["UnprocessedItems"] == {table: [puts[2], puts[5]]}
    stored = sorted(i["k"]["S"] for i in dynamodb.scan(TableName=table)["Items"])
    assert stored == ["item-0", "item-1", "item-3", "item-4"]
    # AND the next call is throttled whole, the one after goes through
    with pytest.raises(ClientError) as throttled:
        dynamodb.batch_write_item(RequestItems={table: puts[2:3]})
    assert throttled.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert dynamodb.batch_write_item(RequestItems={table: puts[2:3]})["UnprocessedItems"] == {}
    assert dynamodb.scan(TableName=table)["Count"] == 5


def test_put_object_fails_only_for_keys_that_match_and_only_as_often_as_asked(emulator, faults):
    s3 = client(emulator, "s3")
    bucket = f"faults-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    faults({"action": "S3.PutObject", "match": f"{bucket}/archive/", "code": "SlowDown", "status": 503,
            "times": 2})
    s3.put_object(Bucket=bucket, Key="other/a.txt", Body=b"a")  # not matched: written
    for _ in range(2):
        with pytest.raises(ClientError) as failed:
            s3.put_object(Bucket=bucket, Key="archive/b.txt", Body=b"b")
        assert failed.value.response["Error"]["Code"] == "SlowDown"
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="archive/")
    s3.put_object(Bucket=bucket, Key="archive/b.txt", Body=b"b")
    assert s3.get_object(Bucket=bucket, Key="archive/b.txt")["Body"].read() == b"b"
    assert faults.rules()[0]["fired"] == 2


def test_a_rule_that_cannot_hold_is_refused_with_its_reason(faults):
    for rule, reason in [({"action": "PutRecords"}, "Service.Operation"),
                         ({"action": "S3.PutObject", "mode": "partial"}, "partial mode knows"),
                         ({"action": "Kinesis.PutRecords", "every": 0}, "every"),
                         ({"action": "Kinesis.PutRecords", "colour": "red"}, "unknown rule fields: colour")]:
        response = requests.post(faults.url, json=[rule], timeout=10)
        assert response.status_code == 400 and reason in response.json()["error"], (rule, response.text)
    assert faults.rules() == []


def test_an_sns_publish_fails_with_the_query_protocols_error_and_other_sns_calls_pass(emulator, faults):
    sns = client(emulator, "sns")
    topic = sns.create_topic(Name=f"faults-{uuid.uuid4().hex[:8]}")["TopicArn"]
    faults({"action": "SNS.Publish", "code": "Throttling", "status": 400, "times": 1})
    with pytest.raises(ClientError) as raised:
        sns.publish(TopicArn=topic, Message="first")
    assert raised.value.response["Error"]["Code"] == "Throttling"
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["TopicArn"] == topic  # not a Publish: untouched
    assert sns.publish(TopicArn=topic, Message="second")["MessageId"]  # the rule is spent
    [rule] = faults.rules()
    assert (rule["fired"], rule["spent"]) == (1, True)
    published = requests.get(f"{emulator.endpoint_url}/_shopstream/sns/published", params={"topic_arn": topic},
                             timeout=10).json()["messages"]
    assert [m["message"] for m in published] == ["second"]
