"""The app events' Kinesis Data Firehose delivery stream on AWS, as plain request data (`ENCORE_EVENTS_SINK=
firehose:<name>` points `encore-recs serve` at it).

It lands what the local collector lands (`python_jobs.events.landing`):
gzip JSON lines under `events/year=/month=/day=/hour=` of the arrival hour
in the lake bucket, failed records under `events-errors/<error type>/…`,
buffered by size and seconds. The role it assumes is
`aws/iam/firehose-delivery.json` with `aws/iam/firehose-delivery.trust.json`;
the serving API's role may put records to this stream only
(`aws/iam/serve-api.json`).
"""

from __future__ import annotations

from python_jobs.events.landing import ERROR_PREFIX, PREFIX, STREAM

HOUR = "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"


def delivery_stream(lake_bucket: str, role_arn: str, buffer_mb: int = 5, buffer_seconds: int = 60,
                    name: str = STREAM) -> dict:
    """The CreateDeliveryStream request: direct PUT from the API, extended S3 destination with the lake's layout."""
    return {
        "DeliveryStreamName": name,
        "DeliveryStreamType": "DirectPut",
        "ExtendedS3DestinationConfiguration": {
            "RoleARN": role_arn,
            "BucketARN": f"arn:aws:s3:::{lake_bucket}",
            "Prefix": PREFIX + HOUR,
            "ErrorOutputPrefix": ERROR_PREFIX + "!{firehose:error-output-type}/" + HOUR,
            "BufferingHints": {"SizeInMBs": buffer_mb, "IntervalInSeconds": buffer_seconds},
            "CompressionFormat": "GZIP",
            "CloudWatchLoggingOptions": {"Enabled": True, "LogGroupName": f"/aws/kinesisfirehose/{name}",
                                         "LogStreamName": "DestinationDelivery"},
        },
        "Tags": [{"Key": "project", "Value": "encore-recs"}],
    }
