"""Time the events stage on what has landed in the lake of ENCORE_STATE_DIR: everything read again from the start
(the ingest checkpoint is deleted first, so the bronze tables are rebuilt), then a run with nothing new. Use a
state folder of your own, after `encore-recs up` and `encore-recs generate --users N`:

    ENCORE_STATE_DIR=/tmp/my-state python benchmarks/events_ingest.py
"""

import time

from python_jobs.config import Settings
from python_jobs.events.ingest import empty_counts, ingest, nothing_new
from python_jobs.events.landing import CHECKPOINT, PREFIX
from python_jobs.infra.s3 import delete_prefix, s3_client
from python_jobs.stack import services
from python_jobs.stack.spark import get_spark


def main() -> None:
    settings = Settings.from_env()
    services.apply_environment(settings)
    spark, client = get_spark(settings), s3_client(settings)

    def exists(prefix: str) -> bool:
        return client.list_objects_v2(Bucket=settings.lake_bucket, Prefix=prefix, MaxKeys=1).get("KeyCount", 0) > 0

    delete_prefix(client, settings.lake_bucket, CHECKPOINT)
    for run, label in enumerate(("everything landed", "nothing new")):
        start = time.perf_counter()
        if exists(CHECKPOINT) and nothing_new(client, settings.lake_bucket):  # as the events stage does
            counts = empty_counts()
        else:
            counts = ingest(spark, client, settings.lake_bucket, f"20000101T00000{run}Z-bench{run}", exists(PREFIX),
                            not exists(CHECKPOINT))
        seconds = time.perf_counter() - start
        print(f"{label}: {seconds:.1f} s, {counts['lines']:,} lines ({counts['lines'] / seconds:,.0f} lines/s), "
              f"{counts['objects']} objects")
    spark.stop()


if __name__ == "__main__":
    main()
