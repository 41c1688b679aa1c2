"""Generated faults are each rejected under their reason; stray case and whitespace are repaired."""

import gzip
import json
import subprocess
import sys

import psycopg2

from python_jobs.stack import postgres
from python_jobs.infra.dbt_runner import run_dbt
from python_jobs.jobs import STAGING_SELECTION
from python_jobs.ingest.faults import inject
from python_jobs.ingest.generate import generate, write_raw
from python_jobs.ingest.reconcile import reconcile
from python_jobs.events.landing import PREFIX


def _clean(stack) -> None:
    """The staging models over the raw tables: clean rows and rejected ones with their reason."""
    run_dbt(stack, ["build", "--target", "pg", *STAGING_SELECTION])


def test_dirty_rate_faults_reconcile_exactly(stack):
    dsn = postgres.pg_dsn(stack)
    market = generate(400, seed=3)
    dirty, expected, normalised = inject(market, 0.05, 3, market.as_of)
    assert sum(sum(r.values()) for r in expected.values()) > 0
    write_raw(dsn, dirty)
    _clean(stack)
    rows = {r["table"]: r for r in reconcile(dsn)}
    for table, row in rows.items():
        assert row["raw"] == len(dirty.tables()[table])
        assert row["raw"] == row["clean"] + row["rejected"]
        assert row["reasons"] == expected.get(table, {}), table
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from staging.stg_raw__listings where category <> lower(trim(category))")
        assert cur.fetchone()[0] == 0
        cur.execute("select count(*) from raw.listings where category <> lower(trim(category))")
        assert cur.fetchone()[0] == normalised["listings"]


def test_generate_with_a_dirty_rate_and_events_through_the_cli(stack, s3, no_events_left):
    """`encore-recs generate --dirty-rate` with the app's events on completes (it used to end in an IndexError
    after the raw tables were written), every raw row is accounted for, and the events name only the users and
    listings that cleaning keeps: the app's events come from the marketplace, not from the faulty export."""
    result = subprocess.run([sys.executable, "-m", "python_jobs.cli", "generate", "--users", "200", "--seed", "3",
                             "--dirty-rate", "0.05"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    prefix = "injected faults (expected rejections): "
    expected = json.loads(next(line for line in result.stdout.splitlines() if line.startswith(prefix))[len(prefix):])
    dsn = postgres.pg_dsn(stack)
    _clean(stack)
    for row in reconcile(dsn):
        assert row["raw"] == row["clean"] + row["rejected"]
        assert row["reasons"] == expected.get(row["table"], {}), row["table"]
    events = [json.loads(line) for page in s3.get_paginator("list_objects_v2").paginate(
                  Bucket=stack.lake_bucket, Prefix=PREFIX) for obj in page.get("Contents", [])
              for line in gzip.decompress(s3.get_object(Bucket=stack.lake_bucket, Key=obj["Key"])["Body"].read())
              .decode().splitlines()]
    assert f"events={len(events)}" in result.stdout and events
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("select uid from staging.stg_raw__users")
        users = {uid for (uid,) in cur.fetchall()}
        cur.execute("select listing_id from staging.stg_raw__listings")
        listings = {listing for (listing,) in cur.fetchall()}
    assert {e["uid"] for e in events} <= users and {e["listing_id"] for e in events} <= listings


def test_generator_is_deterministic_for_a_seed():
    a, b = generate(200, seed=5, as_of=None), generate(200, seed=5, as_of=None)
    for name in a.tables():
        assert a.tables()[name].equals(b.tables()[name]), name
    c = generate(200, seed=6)
    assert not a.bids.equals(c.bids)
