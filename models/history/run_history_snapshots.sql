-- One row per run and mart: the Iceberg snapshot the run read, its tag once published, how a backfill found it.
select run_id, table_name, snapshot_id, tag, found_by
from {{ source('history', 'run_snapshots') }}
