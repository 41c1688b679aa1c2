"""fct_user_item_interactions is an incremental Iceberg mart merged on (uid, listing_id): a second day's build
(new bids, a late bid as old as its pair's earlier one, a listing whose sub-category changed) merges only the
pairs of bids it had not counted, and the mart then holds exactly the rows a full refresh over the same data
builds."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import psycopg2
import pytest

from python_jobs.stack import postgres

USERS = 120
MART = "marts.fct_user_item_interactions"
FIRST_STAGES = ("stage", "extract", "events", "marts")


def _build(settings, log=lambda line: None) -> dict:
    """The run's stages up to the marts, in this process (the run's own state, as `encore-recs run` keeps it)."""
    from orchestration.local_runner import prepare
    from orchestration.stages import STAGES
    from python_jobs.jobs import StageContext, run_stage

    state, _ = prepare(settings, None, None)
    ctx = StageContext(settings, state, log)
    for stage in STAGES:
        if stage.name in FIRST_STAGES:
            run_stage(ctx, stage.name, stage.title)
    return state.data


def _rows(spark) -> list[tuple]:
    return [tuple(r) for r in spark.sql(f"select * from {MART} order by uid, listing_id").collect()]


def _second_day(dsn: str, day_two: datetime) -> tuple[tuple[int, int], int]:
    """New bids on day two, one late bid as old as an earlier bid of its pair, one listing moved to another
    sub-category; returns the late bid's (uid, listing_id) and the moved listing."""
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("select max(bid_id), max(bid_at) from raw.bids")
        next_id, newest = cur.fetchone()
        cur.execute("select b.uid, b.listing_id, b.bid_amount, b.bid_at from raw.bids b join raw.listings l using (listing_id) "
                    "where l.ends_at > %s order by b.bid_id limit 40", (day_two + timedelta(days=1),))
        earlier = cur.fetchall()
        rows = [(next_id + 1 + i, uid, listing, float(amount) + 1, day_two + timedelta(minutes=17 * i))
                for i, (uid, listing, amount, _) in enumerate(earlier[:30])]
        day_two_pairs = {(uid, listing) for _, uid, listing, _, _ in rows}
        late_uid, late_listing, late_amount, late_at = next(b for b in earlier[30:] if (b[0], b[1]) not in day_two_pairs)
        # as old as an earlier bid of the pair (inside its auction), arriving only now with a new id
        rows.append((next_id + 100, late_uid, late_listing, float(late_amount) + 2, late_at))
        cur.executemany("insert into raw.bids values (%s, %s, %s, %s, %s)", rows)
        cur.execute("select listing_id, category, sub_category from raw.listings where listing_id = %s", (earlier[0][1],))
        moved, category, sub_category = cur.fetchone()
        cur.execute("select category, sub_category from raw.listings where sub_category <> %s limit 1", (sub_category,))
        new_category, new_sub = cur.fetchone()
        cur.execute("update raw.listings set category = %s, sub_category = %s where listing_id = %s",
                    (new_category, new_sub, moved))
    return (late_uid, late_listing), moved


@pytest.fixture(scope="module")
def two_days(stack, spark):
    from python_jobs.ingest.generate import generate, write_raw

    dsn = postgres.pg_dsn(stack)
    day_two = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    write_raw(dsn, generate(USERS, seed=29, as_of=day_two))
    first = _build(stack)
    day_one = _rows(spark)
    between = datetime.now(timezone.utc)
    time.sleep(1.1)  # snapshots are stamped to the millisecond; `between` lies strictly before the second build
    late, moved = _second_day(dsn, day_two)
    log = stack.state_dir / "dbt-logs" / "dbt.log"
    before = log.stat().st_size
    second = _build(stack)
    with log.open(errors="replace") as lines:
        lines.seek(before)
        full_parses = [line for line in lines if "Unable to do partial parsing" in line]
    return first, second, day_one, _rows(spark), late, moved, between, full_parses


def test_each_run_records_the_snapshot_of_every_mart_it_read(two_days, spark):
    first, second, *_ = two_days
    snapshots = second["snapshots"]
    assert {"marts.fct_user_item_interactions", "marts.dim_users", "marts.fct_user_item_events"} <= set(snapshots)
    for table, snapshot in snapshots.items():
        current = spark.sql(f"select snapshot_id from {table}.history where is_current_ancestor "
                            "order by made_current_at desc limit 1").collect()[0][0]
        assert snapshot == current, table
    # (this test runs before the full refresh below moves the table on) the first day's snapshot of the interactions is still there to read (time travel), and differs
    before = first["snapshots"]["marts.fct_user_item_interactions"]
    assert before != snapshots["marts.fct_user_item_interactions"]
    assert spark.sql(f"select count(*) from marts.fct_user_item_interactions version as of {before}").collect()[0][0] > 0


def test_a_backfill_reads_the_marts_as_they_stood_by_time_travel(two_days, stack, spark):
    """A backfill as of a moment between the two days' builds runs no dbt: it pins the first day's snapshots, and
    training, the input gate and the output gate read the first day's rows through them."""
    import dataclasses

    from orchestration.local_runner import prepare
    from orchestration.stages import STAGES
    from python_jobs import jobs
    from python_jobs.models import TrainParams
    from python_jobs.models.train import load_marts
    from python_jobs.quality.validate import input_frames
    from python_jobs.runs.snapshots import current_snapshots, pinned_table

    first, _, day_one, incremental, _, _, between, _ = two_days
    before = current_snapshots(spark, "marts")
    settings = dataclasses.replace(stack, as_of=between.isoformat())
    state, _ = prepare(settings, None, None)
    lines: list[str] = []
    ctx = jobs.StageContext(settings, state, lines.append)
    for stage in STAGES:  # staged and landed as any run is, then the marts stage
        if stage.name in ("stage", "extract", "events"):
            jobs.run_stage(ctx, stage.name, stage.title)
    assert jobs.marts(ctx) == 0, lines[-2:]  # nothing built
    assert current_snapshots(spark, "marts") == before
    pinned = ctx.summary["snapshots"]
    for name in ("fct_user_item_interactions", "dim_listings", "dim_users", "dim_user_interests"):
        assert pinned.get(f"marts.{name}") == first["snapshots"].get(f"marts.{name}"), name  # none: empty
        assert ctx.summary["time_travel"][f"marts.{name}"] in ("current then", "a view: read as it is")
    as_read = [tuple(r) for r in pinned_table(spark, MART, pinned).orderBy("uid", "listing_id").collect()]
    assert as_read == day_one != incremental
    params = TrainParams(seed=1)
    then = load_marts(spark, params, between.timestamp(), use_events=False, pinned=pinned)[1]
    now = load_marts(spark, params, between.timestamp(), use_events=False)[1]
    assert then["strength"].sum() < now["strength"].sum()  # the second day's bids are not in what it read
    frames = input_frames(spark, [], pinned)
    assert frames["inputs__fct_user_item_interactions"].agg({"bid_count": "sum"}).first()[0] == sum(
        r[4] for r in day_one)


def test_the_merge_marks_replaced_rows_deleted_instead_of_rewriting_the_table(two_days, spark):
    """Merge-on-read (issue 28): the second day's merge (a late bid on a pair already built) committed position
    deletes beside the changed pairs; copy-on-write rewrote every data file holding a changed pair (at 100,000
    users the merge took 25 s against 5 s for a full build)."""
    properties = {r.key: r.value for r in spark.sql(f"show tblproperties {MART}").collect()}
    assert properties.get("write.merge.mode") == "merge-on-read", properties
    summaries = [r.summary for r in spark.sql(f"select summary from {MART}.snapshots").collect()]
    assert any(int(summary.get("added-position-delete-files", 0)) > 0 for summary in summaries), summaries


def test_the_dimensions_summed_from_the_pairs_count_the_staged_bids_as_of_the_run(two_days, spark):
    """dim_listings and dim_users sum the interactions mart's pairs: after a merged second day they hold what
    grouping every staged bid as of the run gives (bids, distinct bidders or listings, top amount, last bid)."""
    second = two_days[1]
    as_of = datetime.fromisoformat(second["as_of"]).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    bids = f"(select * from staging.stg_raw__bids where bid_at <= timestamp '{as_of}')"

    def rows(sql: str) -> set[tuple]:
        return {tuple(r) for r in spark.sql(sql).collect()}

    by_listing = rows(f"select listing_id, count(*), count(distinct uid), cast(max(bid_amount) as double), max(bid_at) "
                      f"from {bids} group by listing_id")
    assert len(by_listing) > 20
    assert rows("select listing_id, bid_count, bidder_count, top_bid_amount, last_bid_at from marts.dim_listings "
                "where bid_count > 0") == by_listing
    by_user = rows(f"select uid, count(*), count(distinct listing_id) from {bids} group by uid")
    assert rows("select uid, bid_count, listing_count from marts.dim_users where bid_count > 0") == by_user
    assert rows("select uid from marts.dim_users where segment = 'bidder'") == {(r[0],) for r in by_user}


def test_second_day_merges_and_equals_a_full_refresh(two_days, stack, spark):
    from python_jobs.infra.dbt_runner import run_dbt

    _, second, day_one, incremental, late, moved, *_ = two_days
    executed = (stack.state_dir / "dbt-target" / "spark" / "run" / "encore" / "models" / "marts"
                / "fct_user_item_interactions.sql").read_text().lower()
    assert f"merge into {MART}" in executed  # the second day merged; it did not rebuild
    compiled = (stack.state_dir / "dbt-target" / "spark" / "compiled" / "encore" / "models" / "marts"
                / "fct_user_item_interactions.sql").read_text().lower()
    assert "where bid_id > " in compiled  # the pairs of bids above the id it had counted through
    assert incremental != day_one
    by_pair = {(r[0], r[1]): r for r in incremental}
    assert {r[3] for r in incremental if r[1] == moved} != {r[3] for r in day_one if r[1] == moved}
    assert late[1] != moved  # counted as a late bid, not recomputed as a pair on the moved listing
    assert by_pair[late][4] == 1 + next(r[4] for r in day_one if (r[0], r[1]) == late)

    as_of = datetime.fromisoformat(second["as_of"]).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    run_dbt(stack, ["run", "--target", "spark", "--select", "fct_user_item_interactions", "--full-refresh",
                    "--vars", json.dumps({"as_of": as_of})], quiet=True)
    assert _rows(spark) == incremental


def test_a_bid_after_the_as_of_counted_through_is_merged_by_the_next_build(two_days, stack, spark):
    """A bid the last build left out because it came after that build's as-of (its id below the highest counted)
    is merged by the next build as of a later time, which then equals a full refresh; a build as of a time before
    the last one's is refused (it would keep rows newer than it)."""
    from python_jobs.errors import UserError
    from python_jobs.infra.dbt_runner import run_dbt

    def run(as_of: str, *flags: str) -> None:
        run_dbt(stack, ["run", "--target", "spark", "--select", "fct_user_item_interactions", *flags,
                        "--vars", json.dumps({"as_of": as_of})], quiet=True)

    times = spark.sql("select date_format(max(bid_at) - interval 1 hour, 'yyyy-MM-dd HH:mm:ss') as early, "
                      "date_format(max(bid_at), 'yyyy-MM-dd HH:mm:ss') as late from staging.stg_raw__bids").first()
    run(times.early, "--full-refresh")
    early = _rows(spark)
    run(times.late)
    incremental = _rows(spark)
    compiled = (stack.state_dir / "dbt-target" / "spark" / "compiled" / "encore" / "models" / "marts"
                / "fct_user_item_interactions.sql").read_text()
    assert f"bid_at > timestamp '{times.early}'" in compiled
    assert incremental != early
    run(times.late, "--full-refresh")
    assert _rows(spark) == incremental
    log = stack.state_dir / "dbt-logs" / "dbt.log"
    before = log.stat().st_size
    with pytest.raises(UserError, match="fct_user_item_interactions"):
        run(times.early)
    with log.open(errors="replace") as lines:
        lines.seek(before)
        assert "a build as of the earlier" in lines.read()
    assert _rows(spark) == incremental


def test_a_days_dbt_calls_never_parse_the_whole_project_again(two_days):
    """The run's as-of reaches dbt as an env var, not --vars: dbt parses the whole project again (1-2 s a call)
    whenever the vars differ from its last parse's, and each day's as-of differs (issue 28). The second day's
    stage (Postgres target, a folder of its own) and marts (register_landed, then the build) parse nothing whole."""
    assert two_days[-1] == []


def test_the_marts_are_iceberg_and_kept_their_history(two_days, spark):
    for table in ("fct_user_item_interactions", "dim_users", "dim_listings", "fct_user_item_events"):
        rows = spark.sql(f"describe table extended marts.{table}").collect()
        assert next(r.data_type for r in rows if r.col_name == "Provider") == "iceberg", table
    # dbt saw Iceberg (macros/list_relations.sql): a table model is replaced in place, never dropped, so each build
    # added a snapshot to the same table
    assert spark.sql("select count(*) from marts.dim_users.snapshots").collect()[0][0] >= 2



def test_the_second_day_lands_only_the_bids_after_the_watermark(two_days, stack, spark):
    """Extract by watermark: the first day landed every staged bid, the second only those with an id above the
    highest the lake's copy held, appended to that copy (an Iceberg table), which then holds what Postgres
    stages."""
    from python_jobs.runs.settled_bids import settled_bids_changed

    first, second, *_ = two_days
    assert first["landed"]["stg_raw__bids"]["mode"] == "full"
    landed = second["landed"]["stg_raw__bids"]
    assert landed["mode"] == "delta" and landed["base"] == first["landed"]["stg_raw__bids"]["through"]
    extract_rows = next(step["rows"] for step in second["steps"] if step["stage"] == "extract")
    with psycopg2.connect(postgres.pg_dsn(stack)) as conn, conn.cursor() as cur:
        cur.execute("select count(*) filter (where bid_id > %s), count(*), max(bid_id) from staging.stg_raw__bids",
                    (landed["base"],))
        new, staged, top = cur.fetchone()
    assert extract_rows["stg_raw__bids"] == new == 31  # the day's 30 bids and the late one
    assert landed["through"] == top
    lake = spark.sql("select count(*), max(bid_id) from staging.stg_raw__bids").first()
    assert tuple(lake) == (staged, top) and second["merged"]["stg_raw__bids"]["mode"] == "delta"
    newest = spark.sql("select operation, summary from staging.stg_raw__bids.snapshots "
                       "order by committed_at desc limit 1").first()
    assert (newest.operation, newest.summary.get("added-records")) == ("append", "31"), newest
    # maintenance's compaction of the copy moves rows between files, which does not send the mart to a rebuild
    spark.sql("call spark_catalog.system.rewrite_data_files(table => 'staging.stg_raw__bids', "
              "options => map('min-input-files', '2'))")
    assert spark.sql("select operation from staging.stg_raw__bids.snapshots order by committed_at desc "
                     "limit 1").first()[0] == "replace"
    assert settled_bids_changed(spark) is None


def test_a_counted_bid_corrected_rebuilds_the_mart_in_full(two_days, stack, spark):
    """A merge recomputes only the pairs of bids the mart has not counted; a bid it counted, changed since (a
    corrected or replaced source), is seen by the extract's fingerprint, which replaces the lake's copy of the
    bids; the mart sees the copy replaced, and the next build is a full one that counts the correction. A change
    to the copy other than an append (by hand) is seen too."""
    from python_jobs.runs.settled_bids import settled_bids_changed

    assert settled_bids_changed(spark) is None  # the by-hand builds above recorded the bids they counted
    with psycopg2.connect(postgres.pg_dsn(stack)) as conn, conn.cursor() as cur:
        cur.execute("select bid_id, uid, listing_id from raw.bids order by bid_at, bid_id limit 1")
        bid_id, uid, listing = cur.fetchone()
        cur.execute("update raw.bids set bid_amount = bid_amount + 0.5 where bid_id = %s", (bid_id,))
    before = spark.sql(f"select total_bid_amount from {MART} where uid = {uid} and listing_id = {listing}").first()[0]
    lines: list[str] = []
    _build(stack, lines.append)
    assert any("stg_raw__bids landed in full: the staged rows up to bid_id" in line for line in lines), lines
    assert any("rebuilt in full: the staged bids" in line and "corrected" in line for line in lines), lines
    after = spark.sql(f"select total_bid_amount from {MART} where uid = {uid} and listing_id = {listing}").first()[0]
    assert after == pytest.approx(before + 0.5)
    assert settled_bids_changed(spark) is None  # the rebuild recorded the copy's new snapshot
    spark.sql(f"delete from staging.stg_raw__bids where bid_id = {bid_id}")
    assert "changed since the last build other than by new bids (overwrite" in settled_bids_changed(spark)


def test_a_lake_copy_dropped_by_hand_is_landed_again_in_full(two_days, stack, spark):
    """The ledger outlives the table it describes (dropped by hand): the marts stage refuses the delta with what to
    do and clears the ledger, and the run again from extract lands every bid; --full-extract asks for the same."""
    from python_jobs.errors import UserError
    from python_jobs.infra.s3 import s3_client
    from python_jobs.ingest.extract import plan_landing, read_ledger

    spark.sql("drop table staging.stg_raw__bids")
    with pytest.raises(UserError, match=r"does not hold the rows up to bid_id \d+ .*--from extract"):
        _build(stack)
    assert read_ledger(s3_client(stack), stack.lake_bucket, "stg_raw__bids") is None
    again = _build(stack)
    plan = again["landed"]["stg_raw__bids"]
    assert (plan["mode"], plan["base"], plan["reason"]) == ("full", None, "the lake holds none yet")
    with psycopg2.connect(postgres.pg_dsn(stack)) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from staging.stg_raw__bids")
        assert spark.table("staging.stg_raw__bids").count() == cur.fetchone()[0]
        ledger = read_ledger(s3_client(stack), stack.lake_bucket, "stg_raw__bids")
        assert plan_landing(conn, "stg_raw__bids", ledger, False)["mode"] == "delta"
        assert plan_landing(conn, "stg_raw__bids", ledger, True)["reason"] == "asked for (--full-extract)"


def test_a_merge_that_died_before_its_ledger_is_taken_again_without_doubling(two_days, stack, spark):
    """The day's bids appended to the lake's copy, and the stage dead before the ledger said so: the next extract
    lands them again from the old watermark, the merge replaces the copy's rows above it with the landing (no bid
    twice), and that commit, not an append, rebuilds the interactions in full."""
    from python_jobs.infra.s3 import s3_client
    from python_jobs.ingest.extract import LEDGER, read_ledger

    client, key = s3_client(stack), LEDGER.format(model="stg_raw__bids")
    before = read_ledger(client, stack.lake_bucket, "stg_raw__bids")
    with psycopg2.connect(postgres.pg_dsn(stack)) as conn, conn.cursor() as cur:
        cur.execute("insert into raw.bids select (select max(bid_id) from raw.bids) + row_number() over (), uid, "
                    "listing_id, bid_amount + 1, bid_at from (select * from raw.bids order by bid_id desc limit 3) b")
    _build(stack)
    client.put_object(Bucket=stack.lake_bucket, Key=key, Body=json.dumps(before))  # as if the put never happened
    lines: list[str] = []
    again = _build(stack, lines.append)
    plan = again["landed"]["stg_raw__bids"]
    assert (plan["mode"], plan["base"], plan["rows"]) == ("delta", before["through"], 3)
    with psycopg2.connect(postgres.pg_dsn(stack)) as conn, conn.cursor() as cur:
        cur.execute("select count(*), count(distinct bid_id) from staging.stg_raw__bids")
        staged = cur.fetchone()
    assert tuple(spark.sql("select count(*), count(distinct bid_id) from staging.stg_raw__bids").first()) == staged
    assert any("rebuilt in full: the staged bids" in line for line in lines), lines
