"""The events' Firehose delivery stream on AWS: botocore's model accepts its definition, and the API's Firehose sink
delivers a spool segment through PutRecordBatch (moto stands in for AWS; it cannot be reached here)."""

import json
from pathlib import Path

import botocore.session
import pytest
from botocore.validate import ParamValidator

from orchestration.firehose import delivery_stream
from python_jobs.events.landing import FirehoseSink


def _validate(operation: str, params: dict) -> None:
    model = botocore.session.get_session().get_service_model("firehose").operation_model(operation)
    report = ParamValidator().validate(params, model.input_shape)
    assert not report.has_errors(), report.generate_report()


def test_the_delivery_stream_validates_and_lands_in_the_lakes_layout():
    request = delivery_stream("encore-lake", "arn:aws:iam::123456789012:role/encore-firehose", 5, 60)
    _validate("CreateDeliveryStream", request)
    s3 = request["ExtendedS3DestinationConfiguration"]
    assert s3["Prefix"] == "events/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"
    assert s3["ErrorOutputPrefix"].startswith("events-errors/!{firehose:error-output-type}/year=")
    assert s3["CompressionFormat"] == "GZIP" and s3["BufferingHints"] == {"SizeInMBs": 5, "IntervalInSeconds": 60}


def test_the_firehose_sink_puts_every_spooled_line(monkeypatch, tmp_path):
    import boto3
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    lines = [json.dumps({"event_id": f"f-{i}", "type": "view", "uid": 1, "listing_id": i}).encode() for i in range(1203)]
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="encore-lake")
        firehose = boto3.client("firehose")
        firehose.create_delivery_stream(**delivery_stream("encore-lake", "arn:aws:iam::123456789012:role/encore-firehose"))
        calls = []
        firehose.meta.events.register("provide-client-params.firehose.PutRecordBatch",
                                      lambda params, **_: calls.append(len(params["Records"])))
        assert FirehoseSink(firehose, "encore-events").deliver(Path(tmp_path / "segment.ready"), lines) == 3
        s3 = boto3.client("s3")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="encore-lake").get("Contents", [])]
        # moto writes each call's records as one object under the prefix (it leaves !{timestamp} unexpanded)
        landed = b"".join(s3.get_object(Bucket="encore-lake", Key=k)["Body"].read() for k in keys).splitlines()
    assert all(k.startswith("events/year=") for k in keys) and sorted(landed) == sorted(lines)
    assert calls == [500, 500, 203]  # Firehose takes at most 500 records a call


def test_a_stream_that_keeps_refusing_records_leaves_them_in_the_spool(tmp_path):
    class Refusing:
        def put_record_batch(self, DeliveryStreamName, Records):  # noqa: N803 - boto3's names
            return {"FailedPutCount": 1, "RequestResponses": [{"ErrorCode": "ServiceUnavailableException"}] * len(Records)}

    with pytest.raises(RuntimeError, match="refused 2 records 5 times; they stay in the spool"):
        FirehoseSink(Refusing(), "encore-events").deliver(tmp_path / "s.ready", [b"{}", b"{}"])
