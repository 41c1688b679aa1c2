"""Where events land: S3 objects in Kinesis Data Firehose's layout, or a Firehose delivery stream on AWS.

Firehose writes each buffer as one object under the UTC hour it *arrived*
(`events/year=YYYY/month=MM/day=DD/hour=HH/`), named
`<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<id>`, gzip-compressed, and records
it could not process under an error prefix with their reason. `S3Sink`
does the same from the spool (an event that happened at 09:58 and arrived
at 10:02 lands under hour=10: late events are normal). `FirehoseSink` hands
the lines to a delivery stream defined in `orchestration/aws/firehose.py`,
which lands them in the same layout.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

from python_jobs.events.schema import parse_time

STREAM = "encore-events"
VERSION = 1
PREFIX = "events/"
ERROR_PREFIX = "events-errors/"
CHECKPOINT = "checkpoints/events_ingest/"  # the ingest stage's streaming checkpoint, in the lake bucket
HOUR_PREFIX = "year={:%Y}/month={:%m}/day={:%d}/hour={:%H}/"


def clear_landed(client, bucket: str) -> None:
    """No event landed and nothing ingested from the lake's events: what `generate` starts from when it replaces
    the marketplace."""
    from python_jobs.infra.s3 import delete_prefix

    for prefix in (PREFIX, ERROR_PREFIX, CHECKPOINT):
        delete_prefix(client, bucket, prefix)


def hour_prefix(moment: datetime) -> str:
    return HOUR_PREFIX.format(*[moment.astimezone(timezone.utc)] * 4)


def object_key(prefix: str, arrived: datetime, name: str) -> str:
    return f"{prefix}{hour_prefix(arrived)}{STREAM}-{VERSION}-{arrived:%Y-%m-%d-%H-%M-%S}-{name}.gz"


def _arrival(line: bytes) -> tuple[datetime | None, str | None]:
    """The arrival time of a spooled line, or why the line cannot be landed."""
    try:
        arrived = parse_time(json.loads(line)["received_at"])
    except (ValueError, KeyError, TypeError) as exc:
        return None, f"unreadable spool line: {type(exc).__name__}"
    return (arrived, None) if arrived else (None, "unreadable spool line: received_at is not a time")


def objects_for(segment: Path, lines: list[bytes]) -> dict[str, bytes]:
    """The gzip objects one spool segment becomes: its lines grouped by arrival hour, and unreadable lines (a
    write torn by a crash, never acknowledged) as Firehose error records. Names derive from the segment, so
    delivering it again writes the same keys."""
    by_hour: dict[datetime, list[tuple[datetime, bytes]]] = defaultdict(list)
    errors: list[bytes] = []
    for line in lines:
        arrived, why = _arrival(line)
        if arrived is None:
            errors.append(json.dumps({"errorCode": "Spool.Unreadable", "errorMessage": why,
                                      "rawData": base64.b64encode(line).decode()}).encode())
            continue
        by_hour[arrived.replace(minute=0, second=0, microsecond=0)].append((arrived, line))
    objects = {}
    for _, group in sorted(by_hour.items()):
        first = min(arrived for arrived, _ in group)
        body = b"\n".join(line for _, line in group) + b"\n"
        objects[object_key(PREFIX, first, segment.stem)] = gzip.compress(body, mtime=0)
    if errors:
        now = datetime.fromtimestamp(segment.stat().st_mtime, timezone.utc)
        objects[object_key(ERROR_PREFIX + "processing-failed/", now, segment.stem)] = gzip.compress(
            b"\n".join(errors) + b"\n", mtime=0)
    return objects


class S3Sink:
    """Objects straight into the lake bucket (local S3 server, or S3 where no Firehose stream is set up)."""

    def __init__(self, client, bucket: str) -> None:
        self.client, self.bucket = client, bucket

    def deliver(self, segment: Path, lines: list[bytes]) -> int:
        objects = objects_for(segment, lines)
        for key, body in objects.items():
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/x-ndjson",
                                   ContentEncoding="gzip")
        return len(objects)


class FirehoseSink:
    """PutRecordBatch to a delivery stream (500 records a call, failed records retried); Firehose buffers and
    lands them. Delivery is at least once: the events staging model keeps one row per event_id."""

    BATCH = 500

    def __init__(self, client, stream: str, attempts: int = 5) -> None:
        self.client, self.stream, self.attempts = client, stream, attempts

    def deliver(self, segment: Path, lines: list[bytes]) -> int:
        calls = 0
        for start in range(0, len(lines), self.BATCH):
            records = [{"Data": line + b"\n"} for line in lines[start:start + self.BATCH]]
            for _ in range(self.attempts):
                calls += 1
                answer = self.client.put_record_batch(DeliveryStreamName=self.stream, Records=records)
                if not answer.get("FailedPutCount"):
                    break
                records = [r for r, result in zip(records, answer["RequestResponses"]) if result.get("ErrorCode")]
            else:
                raise RuntimeError(f"Firehose stream {self.stream} refused {len(records)} records "
                                   f"{self.attempts} times; they stay in the spool")
        return calls


def make_sink(settings):
    """The sink ENCORE_EVENTS_SINK names: `s3` (default) or `firehose:<delivery stream name>`."""
    if settings.events_sink.startswith("firehose:"):
        import boto3

        return FirehoseSink(boto3.client("firehose", region_name=settings.region), settings.events_sink[9:])
    from python_jobs.infra.s3 import s3_client

    return S3Sink(s3_client(settings), settings.lake_bucket)
