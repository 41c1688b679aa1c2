"""The whole pipeline on the embedded services, asserting on what was published."""

import json
import shutil
import urllib.request

import pandas as pd
import psycopg2
import pytest

from python_jobs.stack import postgres, services
from python_jobs.ingest.generate import generate, write_raw
from python_jobs.publish.publish import read_latest

USERS = 300


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


@pytest.fixture(scope="module")
def published(stack, spark):
    from orchestration.local_runner import run_pipeline

    dsn = postgres.pg_dsn(stack)
    write_raw(dsn, generate(USERS, seed=11))
    lines = []
    summary = run_pipeline(stack, log=lines.append)
    summary["log_lines"] = lines
    manifest = json.loads(_get(summary["manifest_url"]))
    users = {row["uid"]: row for _, row in _published_rows(manifest, "recommendations")}
    return summary, manifest, users, dsn


def _published_rows(manifest, kind):
    """(manifest entry, parsed JSON line) for every line of every published file of `kind`, through its URL."""
    for entry in manifest["files"]:
        if entry["kind"] == kind:
            for line in _get(entry["url"]).decode().splitlines():
                yield entry, json.loads(line)


def _query(dsn, sql):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_manifest_urls_download_and_checksums_and_counts_match(published):
    import hashlib

    _, manifest, _, _ = published
    assert manifest["files"]
    for entry in manifest["files"]:
        body = _get(entry["url"])
        assert len(body) == entry["size"]
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]
        assert body.count(b"\n") == entry["rows"]
    assert manifest["row_counts"]["recommendations"] == manifest["row_counts"]["user_index"]


def test_every_user_gets_n_recommendations_and_bidders_none_already_bid(published, stack):
    summary, manifest, users, dsn = published
    clean_users = {r[0] for r in _query(dsn, "select uid from staging.stg_raw__users")}
    assert set(users) == clean_users
    bids = {}
    for uid, listing_id in _query(dsn, "select uid, listing_id from staging.stg_raw__bids"):
        bids.setdefault(uid, set()).add(listing_id)
    for uid, row in users.items():
        listed = [item["listing_id"] for item in row["recommendations"]]
        assert len(listed) == stack.top_n == len(set(listed))
        assert [item["rank"] for item in row["recommendations"]] == list(range(1, stack.top_n + 1))
        assert not set(listed) & bids.get(uid, set()), uid
    # bidders' lists come from models that learn from bids, not the same popular listings for everyone
    assert any(row["source"] not in ("popularity", "weighted_ratings") for uid, row in users.items() if uid in bids)


def test_only_open_listings_are_recommended(published):
    _, _, users, dsn = published
    open_ids = {r[0] for r in _query(dsn, "select listing_id from staging.stg_raw__listings where status = 'active' and ends_at > now()")}
    for row in users.values():
        assert {item["listing_id"] for item in row["recommendations"]} <= open_ids


def test_cold_start_users_get_popular_listings_from_their_categories(published):
    _, _, users, dsn = published
    cold = _query(
        dsn,
        "select i.uid, array_agg(distinct i.category) from staging.stg_raw__user_interests i "
        "where not exists (select 1 from staging.stg_raw__bids b where b.uid = i.uid) group by i.uid",
    )
    assert cold, "the generator should produce questionnaire-only users"
    open_by_category = dict(_query(
        dsn, "select category, count(*) from staging.stg_raw__listings where status = 'active' and ends_at > now() group by 1"
    ))
    inside = total = 0
    for uid, categories in cold:
        row = users[uid]
        assert row["source"] == "taste"  # the cold-start model: questionnaire categories, then everyone's demand
        available = sum(open_by_category.get(c, 0) for c in categories)
        first = row["recommendations"][: min(available, len(row["recommendations"]))]
        inside += sum(item["category"] in categories for item in first)
        total += len(first)
    # taste ranks by probability: a lone listing of a popular other sub-category may come before the tenth of
    # a chosen one, but the chosen categories fill most of what they can
    assert total and inside / total >= 0.8, (inside, total)


def test_lookup_by_user_name_and_latest_pointer(published, stack):
    summary, manifest, users, _ = published
    index = {row["user_name"]: row for _, row in _published_rows(manifest, "user_index")}
    some = next(iter(users.values()))
    assert index[some["user_name"]]["uid"] == some["uid"]
    assert index[some["user_name"]]["bucket"] == some["uid"] % manifest["uid_buckets"]
    assert read_latest(stack)["run_id"] == summary["run_id"] == manifest["run_id"]
    models = json.loads(open(summary["summary_path"]).read())["evaluation"]["models"]
    assert set(manifest["metrics"]) == {*models, "hybrid"}
    assert all(c["success"] for c in manifest["checkpoints"])


def test_log_lines_carry_no_secret_or_signature(published, stack):
    from python_jobs.stack.s3_server import s3_credentials

    summary = published[0]
    secret = s3_credentials(stack)["secret_key"]
    assert len(summary["log_lines"]) >= 2 * len(summary["steps"])
    for line in summary["log_lines"]:
        assert "X-Amz-Signature" not in line and secret not in line, line


def test_summary_records_steps_and_reconciliation(published):
    summary, _, _, _ = published
    saved = json.loads(open(summary["summary_path"]).read())
    assert saved["status"] == "ok"
    assert set(saved["freshness"]) == {"listings", "bids"} and "error" not in saved["freshness"].values()
    assert [s["status"] for s in saved["steps"]] == ["ok"] * len(saved["steps"])
    for row in saved["reconciliation"]:
        assert row["raw"] == row["clean"] + row["rejected"]
    assert open(saved["data_docs"]).read().startswith("<!DOCTYPE html>") or "<html" in open(saved["data_docs"]).read()
    assert {c["checkpoint"] for c in saved["checkpoints"]} >= {"inputs__reconciliation", "outputs__manifest"}
    # a thousand users fit the driver many times over: every step chose its in-process engine, and said why
    assert {saved["engine"][step] for step in ("als", "tables", "gates", "publish")} == {"local"}
    assert "within 25% of the driver's" in saved["engine"]["als_reason"]
    assert {c["engine"] for c in saved["checkpoints"]} == {"local"}
    assert all(s["spark_jobs"] >= 0 for s in saved["steps"])
    report = open(saved["report"]).read()
    assert "<svg" in report and all(model in report for model in ("als", "popularity", "hybrid"))
    assert {"1", "10"} <= set(saved["evaluation"]["ndcg_at"]["als"])


def test_each_models_own_list_is_published_for_comparison(published):
    summary, manifest, users, dsn = published
    lists = {}
    for entry, row in _published_rows(manifest, "model_lists"):
        lists.setdefault(entry["model"], {})[row["uid"]] = row
    assert set(lists["popularity"]) == set(users)
    bidders = {r[0] for r in _query(dsn, "select distinct uid from staging.stg_raw__bids")}
    assert set(lists["als"]) <= bidders and len(lists["als"]) >= 0.9 * len(bidders)
    for model, rows in lists.items():
        for row in rows.values():
            listed = [item["listing_id"] for item in row["recommendations"]]
            assert len(listed) == len(set(listed)) <= 10
            assert {item["source"] for item in row["recommendations"]} == {model}
    assert manifest["row_counts"]["model_lists"] == sum(len(rows) for rows in lists.values())
    assert set(lists) == set(json.loads(open(summary["summary_path"]).read())["evaluation"]["models"])


def test_promoted_slots_are_marked_at_rank_3_and_only_for_listings_a_promotion_runs_for(published, stack, spark):
    from python_jobs.models.lists import PROMOTED_AT

    run_id = published[0]["run_id"]
    rows = spark.table("recs.recommendations").where(f"run_id = '{run_id}'").toPandas()
    promoted = spark.table("marts.dim_listings").where("promoted_until is not null").toPandas()
    marked = rows[rows["source"] == "promoted"]
    assert len(promoted) and len(marked) and marked["uid"].is_unique  # at most the one slot a list
    assert (marked["rank"] == PROMOTED_AT).all() and marked["listing_id"].isin(promoted["listing_id"]).all()
    as_of = pd.Timestamp(published[0]["as_of"]).tz_convert("UTC").tz_localize(None)  # Spark's session time is UTC
    assert (marked.merge(promoted, on="listing_id")["promoted_until"] > as_of).all()


def test_a_list_breaking_the_marketplaces_rules_is_stopped_at_the_output_gate(published, stack, spark):
    """Planted violations (a user shown their own listing, a promoted mark on a listing nobody promotes) fail the
    output gate, which runs before publish."""
    from python_jobs.models.rules import load_rules
    from python_jobs.models.train import LIST_SCHEMA
    from python_jobs.quality.validate import output_frames, run_checkpoints
    from python_jobs.runs import run_tables
    from python_jobs.runs.run_tables import columns

    summary = published[0]
    names = [c for c, _ in columns(LIST_SCHEMA)]
    rows = run_tables.read(spark, stack, "recommendations", summary["run_id"], names, "local")
    sellers = spark.table("marts.dim_listings").select("listing_id", "seller_uid").toPandas()
    listed = rows.merge(sellers, on="listing_id")
    # a listed listing whose seller has a list of their own: the rules kept it out of that list
    seller_row = listed[listed["seller_uid"].isin(rows["uid"])].iloc[0]
    assert seller_row["listing_id"] not in set(rows[rows["uid"] == seller_row["seller_uid"]]["listing_id"])
    victim = (rows["uid"] == seller_row["seller_uid"]) & (rows["rank"] == 1)
    assert victim.sum() == 1
    planted = rows.copy()
    planted.loc[victim, "listing_id"] = seller_row["listing_id"]
    # and another user's second item marked promoted, though no promotion runs for it
    promoted = spark.table("marts.dim_listings").where("promoted_until is not null").select("listing_id").toPandas()
    unpaid = (planted["uid"] != seller_row["seller_uid"]) & (planted["rank"] == 2) & (
        ~planted["listing_id"].isin(promoted["listing_id"]))
    planted.loc[unpaid[unpaid].index[:1], "source"] = "promoted"
    run_tables.save(spark, stack, "recommendations", "20991231T000000Z-rules1", planted, LIST_SCHEMA, "local")
    parameters = {"top_n": stack.top_n, "promoted_slots": stack.promoted_slots, **load_rules().gate_parameters()}
    project = stack.state_dir / "gx-rules"
    shutil.copytree(stack.project_dir / "expectations", project, ignore=shutil.ignore_patterns("uncommitted"))
    frames = {"outputs__recommendations": output_frames(spark, "20991231T000000Z-rules1")["outputs__recommendations"]}
    results, _ = run_checkpoints(project, frames, parameters)
    assert [r.success for r in results] == [False]
    assert any("own_listing" in failed for failed in results[0].failed), results[0].failed
    assert any("promoted_without_promotion" in failed for failed in results[0].failed), results[0].failed
    clean, _ = run_checkpoints(project, {"outputs__recommendations": output_frames(
        spark, summary["run_id"])["outputs__recommendations"]}, parameters)
    assert [r.success for r in clean] == [True]


def test_dirty_data_stops_at_the_input_gate_and_latest_stays(published, stack):
    from orchestration.local_runner import run_pipeline
    from python_jobs.errors import GateFailed
    from python_jobs.ingest.faults import inject

    summary, _, _, dsn = published
    market = generate(USERS, seed=12)
    dirty, _, _ = inject(market, 0.5, 12, market.as_of)
    write_raw(dsn, dirty)
    with pytest.raises(GateFailed, match="input gate failed: suite inputs__reconciliation"):
        run_pipeline(stack, log=lambda line: None)
    assert read_latest(stack)["run_id"] == summary["run_id"]
    failed = sorted(stack.runs_dir.glob("*/summary.json"))[-1]
    saved = json.loads(failed.read_text())
    assert saved["status"] == "failed"
    assert saved["steps"][-1]["step"].startswith("validate inputs")
    assert not any(step["step"].startswith("train") for step in saved["steps"])


def test_published_run_survives_a_restart_of_the_stack(published, stack, s3):
    """The S3 server keeps objects on disk: after down/up the same run is latest and its URLs still work."""
    import hashlib

    summary, manifest, _, _ = published
    latest_before = read_latest(stack)
    assert services.down(stack) == ["s3", "postgres"]
    with pytest.raises(OSError):
        _get(summary["manifest_url"])
    services.up(stack)
    assert read_latest(stack) == latest_before
    assert json.loads(_get(summary["manifest_url"]))["run_id"] == manifest["run_id"]
    for entry in manifest["files"]:
        body = s3.get_object(Bucket=stack.publish_bucket, Key=entry["key"])["Body"].read()
        assert hashlib.sha256(body).hexdigest() == entry["sha256"], entry["key"]
    catalog = psycopg2.connect(host="127.0.0.1", port=stack.pg_port, user="postgres", dbname=stack.metastore_db)
    with catalog, catalog.cursor() as cur:
        cur.execute('select d."NAME", t."TBL_NAME" from "TBLS" t join "DBS" d on d."DB_ID" = t."DB_ID"')
        tables = set(cur.fetchall())
    catalog.close()
    assert {("marts", "fct_user_item_interactions"), ("recs", "recommendations"), ("staging", "stg_raw__bids")} <= tables

