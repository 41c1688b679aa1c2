"""Publish a run: JSON part files on S3, a manifest of presigned URLs, then `latest.json`.

Layout under the publish bucket:
  runs/<run_id>/recommendations/bucket=<uid % buckets>/part-*.json   one user per line (the served hybrid)
  runs/<run_id>/model_lists/model=<als|popularity>/bucket=<b>/part-*.json  each model's own list, to compare
                                                                     (ids and scores; the model is in the path and
                                                                     the manifest)
  runs/<run_id>/listings/part-*.json                                 one listing per line: the details of every
                                                                     listing in the model lists
  runs/<run_id>/similar_listings/part-*.json                         one listing per line
  runs/<run_id>/user_index/part-*.json                               user_name -> uid, bucket
  runs/<run_id>/manifest.json                                        every file: size, sha256, rows, URL
  latest.json                                                        written last: the run the app is served

A consumer finds a user by uid (bucket = uid % buckets, from the manifest) or
by userName (user_index). Nothing moves `latest.json` until every file of the
run is written and checked against the manifest, so a crash at any point
leaves the previous run published. Nor does a backfill: `latest` moves only to
a run whose as-of time is newer than the served run's (or the same run again),
unless the publish is told to take it (`--take-latest`); a backfill's run is
published all the same, beside the served one.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
from pyspark.sql import functions as F

from python_jobs.config import Settings
from python_jobs.errors import GateFailed
from python_jobs.infra.s3 import delete_prefix, s3_client

LATEST_KEY = "latest.json"


def run_prefix(run_id: str) -> str:
    return f"runs/{run_id}/"


def bucket_count(users: int) -> int:
    return max(1, min(256, users // 5000 + 1))


def shape_user_lists(recs):
    """One row per user: uid, user_name, source, recommendations[rank order]."""
    item = F.struct(
        "rank", "listing_id", "product", "category", "sub_category", "listing_amount",
        F.date_format("ends_at", "yyyy-MM-dd'T'HH:mm:ss'Z'").alias("ends_at"),
        F.round("score", 6).alias("score"), "source",
    )
    return recs.groupBy("uid", "user_name", "list_source").agg(
        F.array_sort(F.collect_list(item)).alias("recommendations")
    ).select("uid", "user_name", F.col("list_source").alias("source"), "recommendations")


def shape_similar(similar):
    item = F.struct("rank", "similar_listing_id", F.round("score", 6).alias("score"))
    return similar.groupBy("listing_id").agg(F.array_sort(F.collect_list(item)).alias("similar"))


def shape_model_lists(model_recs, recs):
    """One row per user and model: uid, user_name, model, recommendations[rank order] of ids and scores (the
    listings file has the details); names come from the served lists (every user has one)."""
    names = recs.select("uid", "user_name").distinct()
    item = F.struct("rank", "listing_id", F.round("score", 6).alias("score"), "source")
    return model_recs.join(names, "uid").groupBy("uid", "user_name", "model").agg(
        F.array_sort(F.collect_list(item)).alias("recommendations"))


def shape_listings(listings):
    """One row per listing the run lists anywhere (served, a model's own, similar), with its details: the
    model lists carry ids only, and serve needs every listing's end time to drop ended auctions."""
    ends_at = F.date_format("ends_at", "yyyy-MM-dd'T'HH:mm:ss'Z'").alias("ends_at")
    # serve's rules need each listing's seller (never shown in an answer)
    return listings.select("listing_id", "product", "category", "sub_category", "listing_amount", ends_at, "seller_uid")


def write_files(settings: Settings, run_id: str, recs, similar, model_recs=None,
                listings=None) -> tuple[int, dict[str, int]]:
    """Write the run's JSON part files with Spark; return the uid bucket count and the lines each kind must hold."""
    base = f"s3a://{settings.publish_bucket}/{run_prefix(run_id)}"
    expected = {}
    lists = shape_user_lists(recs).cache()
    users = lists.count()
    buckets = bucket_count(users)
    with_bucket = lists.withColumn("bucket", F.pmod("uid", F.lit(buckets)))
    with_bucket.repartition("bucket").write.mode("overwrite").partitionBy("bucket").json(base + "recommendations")
    with_bucket.select("user_name", "uid", "bucket").coalesce(1).write.mode("overwrite").json(base + "user_index")
    neighbours = shape_similar(similar).cache()
    with_similar = neighbours.count()
    neighbours.coalesce(2).write.mode("overwrite").json(base + "similar_listings")
    if model_recs is not None:
        per_model = shape_model_lists(model_recs, recs).withColumn("bucket", F.pmod("uid", F.lit(buckets))).cache()
        expected["model_lists"] = per_model.count()
        per_model.repartition("model", "bucket").write.mode("overwrite").partitionBy("model", "bucket").json(
            base + "model_lists")
        per_model.unpersist()
    if listings is not None:
        details = shape_listings(listings).cache()
        expected["listings"] = details.count()
        details.coalesce(1).write.mode("overwrite").json(base + "listings")
        details.unpersist()
    lists.unpersist()
    neighbours.unpersist()
    return buckets, {"recommendations": users, "user_index": users, "similar_listings": with_similar, **expected}


def _pandas(frame) -> pd.DataFrame:
    """A frame in this process: pandas as given, a Spark frame collected once."""
    return frame if isinstance(frame, pd.DataFrame) else frame.toPandas()


def write_files_local(settings: Settings, run_id: str, recs, similar, model_recs=None, listings=None):
    """The same files as `write_files`, serialised in this process from the tables read once into pandas, and
    uploaded in parallel. Returns the bucket count, the lines each kind must hold and each object's (size,
    sha256, lines) as written, so the manifest need not read them back."""
    from concurrent.futures import ThreadPoolExecutor

    from python_jobs.runs.run_tables import DETAILS
    from python_jobs.publish.json_lines import (index_lines, listing_fragments, listing_lines, name_texts, similar_lines,
                                               user_lines)

    served = _pandas(recs)
    listings = _pandas(listings) if listings is not None else None
    details = pd.concat([served[["listing_id", *DETAILS]]]
                        + ([listings[["listing_id", *DETAILS]]] if listings is not None else []))
    details = listing_fragments(details.drop_duplicates("listing_id"))
    names = name_texts(served)
    uids, lines = user_lines(served, details, names, served=True)
    buckets = bucket_count(len(uids))
    prefix = run_prefix(run_id)
    objects = {}

    def by_bucket(kind: str, uids, lines) -> None:
        bucket_of = uids % buckets
        for b in np.unique(bucket_of):
            objects[f"{prefix}{kind}/bucket={b}/part-00000.json"] = [lines[i] for i in np.flatnonzero(bucket_of == b)]

    by_bucket("recommendations", uids, lines)
    index_rows = served.drop_duplicates("uid")
    objects[f"{prefix}user_index/part-00000.json"] = index_lines(index_rows["uid"].to_numpy(), names, buckets)
    objects[f"{prefix}similar_listings/part-00000.json"] = similar_lines(_pandas(similar))
    expected = {"recommendations": len(uids), "user_index": len(index_rows),
                "similar_listings": len(objects[f"{prefix}similar_listings/part-00000.json"])}
    if model_recs is not None:
        own = _pandas(model_recs)
        own = own[own["uid"].isin(names.index)]  # every user has a served list, so a name
        expected["model_lists"] = 0
        for model, rows in own.groupby("model", sort=True):
            model_uids, model_lines = user_lines(rows, details, names, served=False)
            by_bucket(f"model_lists/model={model}", model_uids, model_lines)
            expected["model_lists"] += len(model_lines)
    if listings is not None:
        unique = listings.drop_duplicates("listing_id")  # read back from Parquet, sellers with gaps are floats
        unique = unique.assign(seller_uid=pd.array(unique["seller_uid"], "Int64"))
        objects[f"{prefix}listings/part-00000.json"] = listing_lines(
            listings, listing_fragments(unique, (*DETAILS, "seller_uid")))
        expected["listings"] = len(objects[f"{prefix}listings/part-00000.json"])
    objects = {key: lines for key, lines in objects.items() if lines}
    client = s3_client(settings)

    def put(key: str) -> tuple[str, tuple[int, str, int]]:
        body = ("\n".join(objects[key]) + "\n").encode()
        client.put_object(Bucket=settings.publish_bucket, Key=key, Body=body, ContentType="application/json")
        return key, (len(body), hashlib.sha256(body).hexdigest(), len(objects[key]))

    with ThreadPoolExecutor(8) as pool:
        written = dict(pool.map(put, sorted(objects)))
    return buckets, expected, written


def _describe(client, bucket: str, key: str) -> tuple[int, str, int]:
    """size, sha256, lines of one object, streamed."""
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    digest, size, lines = hashlib.sha256(), 0, 0
    for chunk in body.iter_chunks(1 << 20):
        digest.update(chunk)
        size += len(chunk)
        lines += chunk.count(b"\n")
    return size, digest.hexdigest(), lines


def presign(client, bucket: str, key: str, seconds: int) -> str:
    return client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=seconds)


def build_manifest(settings: Settings, run_id: str, buckets: int, extra: dict, written: dict | None = None) -> dict:
    """The manifest of every JSON object under the run's prefix. An object in `written` (size, sha256, lines as
    uploaded) whose listed size matches is described from there; any other is read back and described."""
    client = s3_client(settings)
    prefix = run_prefix(run_id)
    now = datetime.now(timezone.utc)
    expires = (now + timedelta(seconds=settings.url_expiry_seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    files = []
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=settings.publish_bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            name = key.rsplit("/", 1)[-1]
            if not name.endswith(".json") or name == "manifest.json":
                continue
            known = (written or {}).get(key)
            if known is not None and known[0] == obj["Size"]:
                size, sha, rows = known
            else:
                size, sha, rows = _describe(client, settings.publish_bucket, key)
            kind = key[len(prefix):].split("/", 1)[0]
            entry = {"kind": kind, "key": key, "size": size, "sha256": sha, "rows": rows,
                     "url": presign(client, settings.publish_bucket, key, settings.url_expiry_seconds),
                     "expires_at": expires}
            if kind in ("recommendations", "model_lists") and "/bucket=" in key:
                entry["bucket"] = int(key.split("/bucket=")[1].split("/")[0])
            if kind == "model_lists" and "/model=" in key:
                entry["model"] = key.split("/model=")[1].split("/")[0]
            files.append(entry)
    files.sort(key=lambda f: f["key"])
    return {
        "run_id": run_id,
        "published_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "url_expires_at": expires,
        "uid_buckets": buckets,
        "lookup": {
            "by_uid": "open the recommendations files whose bucket = uid % uid_buckets; one JSON user per line",
            "by_user_name": "find user_name in the user_index files to get uid and bucket",
        },
        "files": files,
        "row_counts": {
            kind: sum(f["rows"] for f in files if f["kind"] == kind)
            for kind in sorted({f["kind"] for f in files})
        },
        **extra,
    }


def check_manifest(manifest: dict, expected: dict[str, int]) -> None:
    """The manifest must list every expected row: a short file stops the publish."""
    for kind, rows in expected.items():
        listed = manifest["row_counts"].get(kind, 0)
        if listed != rows:
            raise GateFailed(f"publish check failed: {kind} files hold {listed} rows, expected {rows}; latest not moved")
    for entry in manifest["files"]:
        if entry["size"] == 0:
            raise GateFailed(f"publish check failed: {entry['key']} is empty; latest not moved")


def _served_as_of(latest: dict) -> datetime:
    """The served run's as-of time; a `latest.json` written before it recorded one was as of when it was
    published (a run then was as of its start, just before)."""
    return datetime.fromisoformat((latest.get("as_of") or latest["published_at"]).replace("Z", "+00:00"))


def move_latest(settings: Settings, run_id: str, manifest_key: str, published_at: str, as_of: datetime,
                take: bool = False) -> dict:
    """Point `latest` at this run when it is newer than the served run (by as-of time), is the served run again,
    nothing is served yet, or `take` says so; a backfill otherwise leaves the app on what it is served.
    Returns {moved, run_id, as_of} of the run served afterwards."""
    latest = read_latest(settings)
    as_of_text = as_of.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if not (take or latest is None or latest["run_id"] == run_id or as_of > _served_as_of(latest)):
        return {"moved": False, "run_id": latest["run_id"],
                "as_of": _served_as_of(latest).strftime("%Y-%m-%dT%H:%M:%SZ")}
    record = {"run_id": run_id, "manifest_key": manifest_key, "published_at": published_at, "as_of": as_of_text}
    s3_client(settings).put_object(Bucket=settings.publish_bucket, Key=LATEST_KEY, Body=json.dumps(record).encode(),
                                   ContentType="application/json")
    return {"moved": True, "run_id": run_id, "as_of": as_of_text}


def publish(settings: Settings, run_id: str, recs, similar, extra: dict, check=None,
            model_recs=None, listings=None, engine: str = "spark", as_of: datetime | None = None,
            take_latest: bool = False) -> tuple[dict, str, dict]:
    """Write, list, check, then move `latest` if this run is the newest (`move_latest`); return the manifest, its
    presigned URL and the run served afterwards ({moved, run_id, as_of}).

    recs: the run's recommendations rows; similar: its similar-listings rows; model_recs: each model's
    own lists (column `model`; ids and scores), published beside the served ones for comparison, with the
    details of `listings` (listing_id, product, category, sub_category, listing_amount, ends_at); engine: `spark` writes the
    files with Spark, `local` serialises them in this process (lists that fit the driver);
    check(manifest): an extra gate (the GX manifest suite) that raises to stop the publish; as_of: the time the
    run is as of (default now), which decides whether it takes `latest`; take_latest: take it whatever its time.
    """
    as_of = as_of or datetime.now(timezone.utc)
    if engine == "local":
        buckets, expected, written = write_files_local(settings, run_id, recs, similar, model_recs, listings)
    else:
        (buckets, expected), written = write_files(settings, run_id, recs, similar, model_recs, listings), None
    extra = {**extra, "as_of": as_of.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    manifest = build_manifest(settings, run_id, buckets, extra, written)
    check_manifest(manifest, expected)
    if check is not None:
        check(manifest)
    client = s3_client(settings)
    manifest_key = run_prefix(run_id) + "manifest.json"
    client.put_object(Bucket=settings.publish_bucket, Key=manifest_key, Body=json.dumps(manifest, indent=1).encode(),
                      ContentType="application/json")
    url = presign(client, settings.publish_bucket, manifest_key, settings.url_expiry_seconds)
    served = move_latest(settings, run_id, manifest_key, manifest["published_at"], as_of, take_latest)
    prune(settings, keep=settings.keep_runs, just_published=run_id)
    return manifest, url, served


def read_latest(settings: Settings) -> dict | None:
    from python_jobs.infra.s3 import read_json

    return read_json(settings, settings.publish_bucket, LATEST_KEY)


def published_at(client, bucket: str, run_id: str) -> datetime:
    """When a run was published: its manifest's time (to the second), or its id's time when it has none (a
    publish that stopped half-way)."""
    from botocore.exceptions import ClientError

    from python_jobs.runs.run_ids import run_time

    try:
        return client.head_object(Bucket=bucket, Key=run_prefix(run_id) + "manifest.json")["LastModified"]
    except ClientError:
        return run_time(run_id)


def prune(settings: Settings, keep: int, just_published: str | None = None) -> list[str]:
    """Delete the runs published longest ago beyond `keep`, never the one `latest` points at nor the one just
    published. Ordered by when each was published (its manifest's time, to the second; a run without one by its
    id's time), not by id: a backfill's id is its old day, and it must not be deleted the moment it is published."""
    client = s3_client(settings)
    latest = read_latest(settings)
    runs = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=settings.publish_bucket, Prefix="runs/", Delimiter="/"):
        runs += [p["Prefix"].split("/")[1] for p in page.get("CommonPrefixes", [])]
    runs.sort(key=lambda run: (run == just_published, published_at(client, settings.publish_bucket, run), run))
    doomed = [r for r in runs[:-keep] if latest is None or r != latest["run_id"]] if len(runs) > keep else []
    for run in doomed:
        delete_prefix(client, settings.publish_bucket, run_prefix(run))
    return doomed
