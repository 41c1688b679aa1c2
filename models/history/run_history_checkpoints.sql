-- One row per run and Great Expectations checkpoint.
select run_id, checkpoint, success, evaluated, failed_expectations, engine
from {{ source('history', 'run_checkpoints') }}
