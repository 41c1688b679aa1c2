"""dbt staging on the real Postgres: each injected fault lands in the rejected model under its reason."""

from datetime import datetime, timedelta, timezone

import psycopg2
import pytest

from python_jobs.stack import postgres
from python_jobs.infra.dbt_runner import run_dbt
from python_jobs.jobs import STAGING_SELECTION
from python_jobs.ingest.generate import generate, write_raw
from python_jobs.ingest.reconcile import reconcile

AS_OF = datetime(2026, 11, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def cleaned(stack):
    dsn = postgres.pg_dsn(stack)
    market = generate(120, seed=7, as_of=AS_OF)
    write_raw(dsn, market)
    listing = market.listings.iloc[0]
    inside = listing.listed_at + (listing.ends_at - listing.listed_at) / 2
    lid, amount = int(listing.listing_id), float(listing.listing_amount)
    bid_rows = [
        # (bid_id, uid, listing_id, amount, bid_at, expected reason)
        (900001, 1, lid, amount, inside, None),
        (900001, 1, lid, amount, inside, "duplicate"),
        (900002, 999999, lid, amount, inside, "unknown_user"),
        (900003, 1, 999999, amount, inside, "unknown_listing"),
        (900004, 1, lid, None, inside, "invalid_amount"),
        (900005, 1, lid, -5.0, inside, "invalid_amount"),
        (900006, 1, lid, 0.0, inside, "invalid_amount"),
        (900007, 1, lid, amount * 1000, inside, "absurd_amount"),
        (900008, 1, lid, amount, datetime.now(timezone.utc) + timedelta(days=3), "future_timestamp"),
        (900009, 1, lid, amount, listing.listed_at - timedelta(days=1), "outside_auction_window"),
        (None, 1, lid, amount, inside, "missing_key"),
    ]
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.executemany("insert into raw.bids values (%s, %s, %s, %s, %s)", [r[:5] for r in bid_rows])
        cur.execute("insert into raw.users values (900001, ' Ana ', 'ANA.X@Example.com ', now() - interval '2 day')")
        cur.execute("insert into raw.users values (900002, 'ana2', 'ana.x@example.com', now() - interval '1 day')")
        cur.execute("insert into raw.users values (900003, 'nomail', 'not-an-email', now())")
        cur.execute("insert into raw.users values (null, 'ghost', 'ghost@example.com', now())")
        cur.execute(
            "insert into raw.listings values (900001, 'lamp', '  Home ', 'LAMPS  ', 10, 5, 1, %s, %s, 'active'),"
            " (900002, 'sword', 'weapons', 'swords', 10, 5, 1, %s, %s, 'active'),"
            " (900003, 'free', 'home', 'lamps', 0, 5, 1, %s, %s, 'active'),"
            " (900001, 'lamp copy', 'home', 'lamps', 10, 5, 1, %s, %s, 'active')",
            [AS_OF - timedelta(days=2), AS_OF + timedelta(days=2)] * 4,
        )
        cur.execute(
            "insert into raw.user_interests values (999999, 'home', 'lamps', now()), (1, 'weapons', 'swords', now()),"
            " (1, ' HOME', 'lamps', now()), (1, 'home', ' Lamps', now())"
        )
        cur.execute(
            "insert into raw.promotions values (900001, %s, %s, %s), (900001, %s, %s, %s), (900002, 999999, %s, %s),"
            " (900003, %s, %s, %s), (null, %s, %s, %s)",
            [lid, AS_OF, AS_OF + timedelta(days=1)] * 2 + [AS_OF, AS_OF + timedelta(days=1)]
            + [lid, AS_OF + timedelta(days=1), AS_OF] + [lid, AS_OF, AS_OF + timedelta(days=1)])
    run_dbt(stack, ["build", "--target", "pg", *STAGING_SELECTION])
    return dsn, bid_rows


def _reasons(dsn, sql, args=()):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def test_each_faulty_bid_is_rejected_with_its_reason(cleaned):
    dsn, bid_rows = cleaned
    rejected = _reasons(dsn, "select bid_id, reject_reason from staging.stg_raw__bids_rejected where bid_id >= 900000 or bid_id is null")
    expected = sorted(((r[0], r[5]) for r in bid_rows if r[5]), key=str)
    assert sorted(rejected, key=str) == expected
    clean = _reasons(dsn, "select bid_id from staging.stg_raw__bids where bid_id >= 900000")
    assert clean == [(900001,)]


def test_users_normalised_and_duplicate_emails_rejected(cleaned):
    dsn, _ = cleaned
    assert _reasons(dsn, "select user_name, email from staging.stg_raw__users where uid = 900001") == [("Ana", "ana.x@example.com")]
    rejected = dict(_reasons(dsn, "select coalesce(uid, -1), reject_reason from staging.stg_raw__users_rejected where uid >= 900000 or uid is null"))
    assert rejected == {900002: "duplicate", 900003: "invalid_email", -1: "missing_key"}


def test_listing_categories_normalised_or_rejected(cleaned):
    dsn, _ = cleaned
    assert _reasons(dsn, "select category, sub_category from staging.stg_raw__listings where listing_id = 900001") == [("home", "lamps")]
    rejected = sorted(_reasons(dsn, "select listing_id, reject_reason from staging.stg_raw__listings_rejected where listing_id >= 900000"))
    assert rejected == [(900001, "duplicate"), (900002, "unknown_category"), (900003, "invalid_amount")]


def test_interests_deduplicated_after_normalising(cleaned):
    dsn, _ = cleaned
    rejected = sorted(_reasons(dsn, "select uid, category, reject_reason from staging.stg_raw__user_interests_rejected"))
    assert (999999, "home", "unknown_user") in rejected
    assert (1, "weapons", "unknown_category") in rejected
    assert any(r[0] == 1 and r[1] == "home" and r[2] == "duplicate" for r in rejected)


def test_each_faulty_promotion_is_rejected_with_its_reason(cleaned):
    dsn, _ = cleaned
    rejected = _reasons(dsn, "select coalesce(promotion_id, -1), reject_reason from staging.stg_raw__promotions_rejected "
                             "where promotion_id >= 900000 or promotion_id is null")
    assert sorted(rejected) == [(-1, "missing_key"), (900001, "duplicate"), (900002, "unknown_listing"),
                                (900003, "invalid_window")]
    assert _reasons(dsn, "select promotion_id from staging.stg_raw__promotions where promotion_id >= 900000") == [
        (900001,)]


def test_every_raw_row_is_accounted_for(cleaned):
    dsn, _ = cleaned
    for row in reconcile(dsn):
        assert row["raw"] == row["clean"] + row["rejected"], row
        assert row["rejected"] == sum(row["reasons"].values())
