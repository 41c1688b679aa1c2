"""The events loop through real parts: POST → Firehose-shaped objects on the S3 server → the events stage ingests
them once → the events mart holds them → the user's published list follows them."""

import json
import sys
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import psycopg2
import pytest
from fastapi.testclient import TestClient

from python_jobs.stack import postgres
from python_jobs.events.collector import Collector
from python_jobs.events.landing import S3Sink, hour_prefix
from python_jobs.events.spool import Spool
from python_jobs.ingest.generate import generate, write_raw
from python_jobs.serving.app import build_app
from python_jobs.serving.loader import RunHolder

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from api_keys import keyed  # noqa: E402


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def _lists(summary) -> dict[int, list[int]]:
    manifest = json.loads(_get(summary["manifest_url"]))
    rows = [json.loads(line) for entry in manifest["files"] if entry["kind"] == "recommendations"
            for line in _get(entry["url"]).decode().splitlines()]
    return {row["uid"]: [item["listing_id"] for item in row["recommendations"]] for row in rows}


@pytest.fixture(scope="module")
def loop(stack, spark, s3, tmp_path_factory):
    from orchestration.local_runner import run_pipeline

    dsn = postgres.pg_dsn(stack)
    write_raw(dsn, generate(200, seed=21))
    first = run_pipeline(stack, log=lambda _: None)
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("select uid from staging.stg_raw__users u where not exists "
                    "(select 1 from staging.stg_raw__bids b where b.uid = u.uid) order by uid limit 1")
        (uid,) = cur.fetchone()
        cur.execute("select sub_category, array_agg(listing_id order by listing_id) from staging.stg_raw__listings "
                    "where status = 'active' and ends_at > now() + interval '1 day' and sub_category not in "
                    "(select coalesce(sub_category, '') from staging.stg_raw__user_interests where uid = %s) "
                    "group by 1 having count(*) >= 4 order by count(*) desc limit 1", (uid,))
        sub_category, listings = cur.fetchone()
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    events = [{"event_id": f"loop-{uid}-{listing}-{kind}", "type": kind, "uid": uid, "listing_id": listing,
               "at": now, **({"watch_seconds": 40} if kind == "watch" else {})}
              for listing in listings[:4] for kind in ("view", "watch", "like")]
    collector = Collector(Spool(tmp_path_factory.mktemp("spool"), 10**6, 900), S3Sink(s3, stack.lake_bucket))
    before = datetime.now(timezone.utc)
    store, header = keyed(tmp_path_factory.mktemp("keys"), ("events",))
    answer = TestClient(build_app(RunHolder(stack), collector, keys=store), headers=header).post(
        "/v1/events", json={"events": events}).json()
    hours = {hour_prefix(before), hour_prefix(datetime.now(timezone.utc))}  # the arrival hour (a boundary may pass)
    objects = collector.deliver(force=True)
    collector.spool.close()
    second = run_pipeline(stack, log=lambda _: None)
    third = run_pipeline(stack, log=lambda _: None)
    return {"uid": uid, "sub_category": sub_category, "listings": listings, "events": events, "answer": answer,
            "objects": objects, "hours": hours, "runs": (first, second, third)}


def test_posted_events_land_under_the_hour_they_arrived(loop, s3, stack):
    assert loop["answer"] == {"accepted": len(loop["events"]), "duplicates": 0, "rejected": []}
    keys = [o["Key"] for hour in loop["hours"]
            for o in s3.list_objects_v2(Bucket=stack.lake_bucket, Prefix="events/" + hour).get("Contents", [])]
    assert loop["objects"] >= 1 and keys and all(k.endswith(".gz") for k in keys)


def test_the_next_run_ingests_them_once_and_the_one_after_nothing(loop):
    _, second, third = loop["runs"]
    assert second["events"]["ingested"] == len(loop["events"]) and second["events"]["quarantined"] == 0
    assert second["events"]["lines"] == second["events"]["ingested"] + second["events"]["quarantined"]
    assert third["events"] == {"batches": 0, "objects": 0, "lines": 0, "ingested": 0, "quarantined": 0, "reasons": {}}
    assert [s["stage"] for s in second["steps"]][:4] == ["stage", "extract", "events", "marts"]


def test_the_events_mart_holds_them(loop, spark):
    # the test session's Spark may have listed this table's files for an earlier module's run: read it anew
    spark.catalog.refreshTable("marts.fct_user_item_events")
    row = spark.sql(f"select sum(view_count) v, sum(watch_count) w, sum(like_count) l, sum(watch_seconds) s, "
                    f"sum(event_strength) e from marts.fct_user_item_events where uid = {loop['uid']}").first()
    assert (row.v, row.w, row.l, row.s) == (4, 4, 4, 160.0)
    assert row.e == pytest.approx(4 * (0.1 + 0.3 + 0.5))


def test_the_users_published_list_follows_their_events(loop):
    first, second, _ = loop["runs"]
    uid, liked = loop["uid"], set(loop["listings"])
    before, after = _lists(first)[uid], _lists(second)[uid]
    assert len(set(after) & liked) > len(set(before) & liked), (before, after, sorted(liked))


def test_the_events_table_takes_each_batch_once_and_equals_a_full_refresh(loop, stack, spark):
    """Built incrementally over the loop's three runs (the second appended its new batch, the third nothing new),
    the deduplicated events hold exactly the rows a full refresh from bronze builds."""
    from python_jobs.events.ingest import bronze_batches
    from python_jobs.infra.dbt_runner import run_dbt
    from python_jobs.runs.snapshots import table_properties

    table = "staging.stg_events__app_events"

    def rows() -> list[tuple]:
        spark.catalog.refreshTable(table)
        return sorted(tuple(r) for r in spark.table(table).collect())

    incremental = rows()
    assert {e["event_id"] for e in loop["events"]} <= {r[0] for r in incremental}
    assert len({r[0] for r in incremental}) == len(incremental)
    target = stack.state_dir / "dbt-target" / "spark"
    path = Path("encore", "models", "events", "stg_events__app_events.sql")
    executed, compiled = ((target / part / path).read_text().lower() for part in ("run", "compiled"))
    # the third run's build appended the batches it did not hold (none new), leaving out the ids it held
    assert "insert into table staging.stg_events__app_events" in executed
    assert "left anti join" in compiled and "where false" in compiled  # no batch above the one it read through
    # its post-hook recorded the newest batch bronze holds, which the next build reads above
    newest = max(bronze_batches(spark), key=lambda name: int(name.rsplit("-", 1)[1]))
    recorded = table_properties(spark, table)
    assert (recorded["encore.bronze_through_batch"], recorded["encore.bronze_through_batch_id"]) == (
        newest, str(int(newest.rsplit("-", 1)[1])))
    run_dbt(stack, ["run", "--target", "spark", "--select", "stg_events__app_events", "--full-refresh"], quiet=True)
    assert rows() == incremental


def test_the_events_key_test_fails_on_a_planted_bad_or_repeated_event(loop, stack, spark):
    """The one pass over stg_events__app_events (primary_key with `valid`) stops a dbt build on an event of an
    unknown type and one without a user; a resend of an event already in the table, landed in a later bronze
    batch, is left out by the incremental build (one copy of each id), and a full refresh rebuilds the table from
    what bronze holds. A batch is read once, even one that held only a resend; a dropped batch the table read sends
    the marts stage to a full refresh."""
    from python_jobs.errors import UserError
    from python_jobs.events.ingest import bronze_lost
    from python_jobs.runs.snapshots import table_properties
    from python_jobs.infra.dbt_runner import run_dbt

    bronze, events = "events.bronze_app_events", "staging.stg_events__app_events"
    now = "timestamp '2026-12-01 10:00:00'"

    def plant(batch: str, row: str) -> None:
        spark.sql(f"insert into {bronze} partition (ingest_batch = '{batch}') values {row}")

    def build(*flags: str) -> None:
        run_dbt(stack, ["build", "--target", "spark", "--select", "stg_events__app_events", *flags], quiet=True)

    def copies(event_id: str) -> int:
        spark.catalog.refreshTable(events)
        return spark.table(events).where(f"event_id = '{event_id}'").count()

    first = loop["events"][0]
    resend, bad_type, no_user = (f"20261201T100000Z-planted-{n}" for n in (900001, 900002, 900003))
    planted = (resend, bad_type, no_user)
    try:
        plant(resend, f"('{first['event_id']}', 'view', {first['uid']}, {first['listing_id']}, {now}, "
                      f"{now}, null, null, 'planted.gz', null, null)")
        build()
        assert copies(first["event_id"]) == 1
        # the batch of a resend alone left no row, and is not read again: the next build reads above it
        assert table_properties(spark, events)["encore.bronze_through_batch"] == resend
        for batch, bad in ((bad_type, "('{id}', 'bogus', 1, 1, {now}, {now}, null, null, 'p.gz', null, null)"),
                           (no_user, "('{id}', 'view', null, 1, {now}, {now}, null, null, 'p.gz', null, null)")):
            plant(batch, bad.format(id=batch, now=now))
            with pytest.raises(UserError, match="primary_key_stg_events__app_events_event_id"):
                build()
            assert copies(batch) == 1  # appended by the incremental build, then refused by the key test
            assert bronze_lost(spark) is None
            spark.sql(f"delete from {bronze} where ingest_batch = '{batch}'")
            # the marts stage would rebuild the incremental tables in full
            assert "events batches" in bronze_lost(spark)
            build("--full-refresh")
            assert copies(batch) == 0 and copies(first["event_id"]) == 1 and bronze_lost(spark) is None
    finally:
        for batch in planted:
            spark.sql(f"delete from {bronze} where ingest_batch = '{batch}'")
    build("--full-refresh")
    assert copies(first["event_id"]) == 1


def test_the_events_mart_recomputes_only_the_days_new_events_fall_on(loop, stack, spark):
    """fct_user_item_events is incremental by day: a later batch with a late event of an earlier day replaces that
    day's partition (and the newest day's) and leaves every other day as it was, and the mart then equals a full
    refresh over the same events; after a build as of an earlier day, the next build brings back every day since."""
    from datetime import timedelta

    from python_jobs.infra.dbt_runner import run_dbt

    bronze, mart = "events.bronze_app_events", "marts.fct_user_item_events"
    batch_a, batch_b = (f"20261201T100000Z-days-{n}" for n in (910001, 910002))  # read after every earlier batch
    first = loop["events"][0]
    today = datetime.now(timezone.utc).replace(hour=12, minute=0, second=0, microsecond=0)
    days = [today - timedelta(days=n) for n in (30, 29, 28)]  # before anything else the session's lake holds

    def plant(batch: str, number: int, at: datetime) -> None:
        stamp = f"timestamp '{at:%Y-%m-%d %H:%M:%S}'"
        spark.sql(f"insert into {bronze} partition (ingest_batch = '{batch}') values ('{batch}-{number}', 'view', "
                  f"{first['uid']}, {first['listing_id']}, {stamp}, {stamp}, null, null, 'p.gz', null, null)")

    def build(*flags: str) -> None:
        run_dbt(stack, ["run", "--target", "spark", "--select", "stg_events__app_events", "fct_user_item_events",
                        *flags], quiet=True)

    def rows() -> list[tuple]:
        spark.catalog.refreshTable(mart)
        return sorted(tuple(r) for r in spark.table(mart).collect())

    def views(day: datetime) -> int:
        spark.catalog.refreshTable(mart)
        return spark.sql(f"select coalesce(sum(view_count), 0) from {mart} where uid = {first['uid']} and "
                         f"listing_id = {first['listing_id']} and event_date = date '{day:%Y-%m-%d}'").first()[0]

    compiled = stack.state_dir / "dbt-target" / "spark" / "compiled" / "encore" / "models" / "marts" / \
        "fct_user_item_events.sql"
    try:
        for number, day in enumerate(days):
            plant(batch_a, number, day)
        build()
        assert [views(day) for day in days] == [1, 1, 1]
        plant(batch_b, 0, days[0] + timedelta(hours=3))  # a late event of the oldest day
        build()
        sql = compiled.read_text()
        assert f"date '{days[0]:%Y-%m-%d}'" in sql and f"date '{days[1]:%Y-%m-%d}'" not in sql, sql
        assert [views(day) for day in days] == [2, 1, 1]
        summary = spark.sql(f"select summary from {mart}.snapshots order by committed_at desc limit 1").first()[0]
        assert summary["changed-partition-count"] == "2", summary  # the late event's day and the newest day held
        incremental = rows()
        build("--full-refresh")
        assert rows() == incremental
        # built as of the oldest day (as a backfill rebuilds it), then the next day's run: every day since is back
        build("--full-refresh", "--vars", json.dumps({"as_of": f"{days[0]:%Y-%m-%d} 23:59:59"}))
        assert [views(day) for day in days] == [2, 0, 0]
        build()
        assert rows() == incremental
    finally:
        for batch in (batch_a, batch_b):
            spark.sql(f"delete from {bronze} where ingest_batch = '{batch}'")
        build("--full-refresh")
    assert views(days[0]) == 0
