"""A generated marketplace that lives day by day (`generate --next-day`, issue 29): each day appends what a day of
Encore adds, the same rows for a seed and a day, and nothing of it is rejected by cleaning."""

import gzip
import subprocess
import sys
from datetime import datetime, timezone

import numpy as np
import psycopg2

from python_jobs.events.landing import PREFIX
from python_jobs.infra.dbt_runner import run_dbt
from python_jobs.ingest.generate import generate
from python_jobs.ingest.next_day import grown, next_day
from python_jobs.ingest.reconcile import reconcile
from python_jobs.jobs import STAGING_SELECTION
from python_jobs.stack import postgres

DAY = 86400.0
T0 = datetime(2026, 11, 20, tzinfo=timezone.utc)


def _seconds(column):
    return column.astype("int64").to_numpy() / 1e9


def test_a_day_appends_new_users_listings_and_bids_inside_their_windows_and_ends_auctions():
    before = grown(300, 5, T0.timestamp(), 1)
    after, change = next_day(before, 5, 2, 300)
    start, end = before.as_of, after.as_of
    assert end - start == DAY and start == T0.timestamp() + DAY
    for table in ("users", "listings", "bids", "user_interests", "promotions"):
        old, new = (getattr(m, table).drop(columns="status", errors="ignore") for m in (before, after))
        assert new.iloc[:len(old)].equals(old), table  # appended, never rewritten (statuses aside)
    assert change["users"]["uid"].min() == before.users["uid"].max() + 1
    assert change["listings"]["listing_id"].min() == before.listings["listing_id"].max() + 1
    assert change["bids"]["bid_id"].min() == before.bids["bid_id"].max() + 1
    bids, listings = change["bids"], after.listings.set_index("listing_id")
    at = _seconds(bids["bid_at"])
    assert ((at < end) & (at >= start - 3 * DAY)).all() and 0 < (at < start).sum() < 0.1 * len(bids)  # a few late
    opened, closed = (_seconds(listings.loc[bids["listing_id"], column]) for column in ("listed_at", "ends_at"))
    assert ((at >= opened) & (at <= closed)).all()
    # about a day's share of what the first 40 days held
    assert 0.5 < len(bids) / (len(generate(300, 5, T0).bids) / 40) < 2
    ending = _seconds(before.listings["ends_at"])
    closing = before.listings["listing_id"][(ending >= start) & (ending < end)]
    assert set(change["ended"]) == set(closing) and set(change["ended"].values()) <= {"sold", "ended"}
    assert (listings.loc[list(change["ended"]), "status"] == list(change["ended"].values())).all()


def test_the_same_seed_and_day_give_the_same_marketplace():
    one, two = grown(200, 9, T0.timestamp(), 3), grown(200, 9, T0.timestamp(), 3)
    for table in ("users", "listings", "bids", "user_interests", "promotions"):
        assert getattr(one, table).equals(getattr(two, table)), table
    assert not grown(200, 10, T0.timestamp(), 3).bids.equals(one.bids)
    assert np.array_equal(one.truth["prefs"][:200], generate(200, 9, T0).truth["prefs"])


def test_next_day_through_the_cli_appends_cleanly_until_today(stack, s3, no_events_left):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "python_jobs.cli", "generate", *args], capture_output=True,
                              text=True, timeout=600)

    assert cli("--users", "200", "--seed", "4", "--days-ago", "2").returncode == 0
    dsn = postgres.pg_dsn(stack)

    def rows(table):
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute(f"select count(*) from raw.{table}")
            return cur.fetchone()[0]

    counts = [{t: rows(t) for t in ("users", "listings", "bids")}]
    for day in (1, 2):
        done = cli("--next-day")
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"day {day} (to ") and "events=" in done.stdout
        counts.append({t: rows(t) for t in ("users", "listings", "bids")})
        assert all(counts[-1][t] > counts[-2][t] for t in counts[-1]), counts
    refused = cli("--next-day")  # day 3 would end tomorrow
    assert refused.returncode == 2 and "has not come yet" in refused.stderr and "Traceback" not in refused.stderr
    landed = [obj["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
              Bucket=stack.lake_bucket, Prefix=PREFIX) for obj in page.get("Contents", [])]
    assert any("-day2-" in key for key in landed)
    day_two = [key for key in landed if "-day2-" in key][0]
    body = gzip.decompress(s3.get_object(Bucket=stack.lake_bucket, Key=day_two)["Body"].read())
    assert b'"event_id":"gen4-day2-' in body
    run_dbt(stack, ["build", "--target", "pg", *STAGING_SELECTION])
    for row in reconcile(dsn):
        assert row["rejected"] == 0 and row["raw"] == row["clean"], row
