-- One row per run and stage: its outcome, seconds, peak memory and Spark jobs.
select
    run_id,
    stage,
    status,
    seconds,
    python_mb,
    jvm_mb,
    spark_jobs,
    cast(finished_at as timestamp) as finished_at
from {{ source('history', 'run_stages') }}
