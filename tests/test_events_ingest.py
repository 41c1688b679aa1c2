"""The events stage's split of landed lines: every line ends in bronze or in quarantine with its reason."""

import json
import uuid
from datetime import timedelta

import pytest

from python_jobs.events.ingest import INGESTED, IN_FLIGHT, nothing_new, split_lines

GOOD = {"event_id": "a", "type": "view", "uid": 3, "listing_id": 9, "at": "2026-12-03T10:00:00.000Z",
        "received_at": "2026-12-03T10:00:02.000Z", "session_id": "s"}


@pytest.mark.parametrize("line,reason", [
    ("not json", "not a JSON event with an event_id"),
    (json.dumps({**GOOD, "event_id": None}), "not a JSON event with an event_id"),
    (json.dumps({**GOOD, "type": "stare"}), "unknown or missing type"),
    (json.dumps({**GOOD, "uid": 0}), "uid missing or out of range"),
    (json.dumps({**GOOD, "uid": "seven"}), "uid missing or out of range"),
    (json.dumps({**GOOD, "listing_id": 2**31}), "listing_id missing or out of range"),
    (json.dumps({**GOOD, "at": "yesterday"}), "at missing or not a time"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "received_at"}), "received_at missing or not a time"),
    (json.dumps({**GOOD, "type": "watch", "watch_seconds": -3}), "negative watch_seconds"),
])
def test_a_bad_line_is_quarantined_with_its_reason(spark, line, reason):
    lines = spark.createDataFrame([(json.dumps(GOOD), "o1"), (line, "o2")], "value string, source_object string")
    good, bad = split_lines(lines)
    assert [r.event_id for r in good.collect()] == ["a"]
    assert [(r.line, r.reason, r.source_object) for r in bad.collect()] == [(line, reason, "o2")]


def test_a_good_line_keeps_every_field_typed(spark):
    line = json.dumps({**GOOD, "type": "watch", "watch_seconds": 12.5})
    good, bad = split_lines(spark.createDataFrame([(line, "o1")], "value string, source_object string"))
    row = good.first().asDict()
    assert bad.count() == 0
    assert row["uid"] == 3 and row["listing_id"] == 9 and row["watch_seconds"] == 12.5
    assert row["event_at"].isoformat() == "2026-12-03T10:00:00" and row["received_at"].isoformat() == "2026-12-03T10:00:02"


@pytest.mark.parametrize("at", ["2026-12-03T11:00:00.000+01:00", "2026-12-03T10:00:00Z", "2026-12-03T05:00:00-05:00"])
def test_every_iso_form_the_collector_accepts_is_the_same_instant(spark, at):
    good, bad = split_lines(spark.createDataFrame([(json.dumps({**GOOD, "at": at}), "o1")],
                                                  "value string, source_object string"))
    assert bad.count() == 0 and good.first().event_at.isoformat() == "2026-12-03T10:00:00"


def test_a_run_with_nothing_new_is_told_by_a_listing(s3):
    """No marker: read (a first run, or the checkpoint gone). An object put after the last complete ingest's
    listing began, or within IN_FLIGHT before it, is new; older ones were listed."""
    bucket = f"nothing-new-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="events/year=2026/month=12/day=03/hour=10/a.gz", Body=b"")
    landed = s3.head_object(Bucket=bucket, Key="events/year=2026/month=12/day=03/hour=10/a.gz")["LastModified"]

    def listing_began(moment) -> bool:
        s3.put_object(Bucket=bucket, Key=INGESTED, Body=json.dumps({"listing_started": moment.isoformat()}))
        return nothing_new(s3, bucket)

    assert not nothing_new(s3, bucket)
    assert listing_began(landed + IN_FLIGHT + timedelta(seconds=2))
    assert not listing_began(landed + IN_FLIGHT - timedelta(seconds=2))
    assert not listing_began(landed - timedelta(minutes=1))
