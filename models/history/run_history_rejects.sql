-- One row per run, raw table and reason code: the rows the cleaning rejected.
select run_id, table_name, reason, rejected_rows, raw_rows, clean_rows
from {{ source('history', 'run_rejects') }}
