-- One row per run, model, user segment (all, new, light, heavy) and replay metric.
select run_id, model, segment, metric, value
from {{ source('history', 'run_metrics') }}
