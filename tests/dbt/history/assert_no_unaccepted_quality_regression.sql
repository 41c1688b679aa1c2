-- The champion-challenger gate, as the data team's test: no run published a hybrid whose nDCG on its replay fell
-- below the champion's (the run published before it, scored on the same replay) by more than
-- ENCORE_MAX_QUALITY_DROP (relative, default 5%; the pipeline sets it to its own setting; the var max_quality_drop
-- overrides it),
-- unless someone accepted it (`--accept-regression`).
select run_id, champion_run, champion_ndcg, challenger_ndcg, quality_drop
from {{ ref('run_history_runs') }}
where status = 'published'
  and accepted_by is null
  and champion_ndcg > 0
  and (champion_ndcg - challenger_ndcg) / champion_ndcg > {{ var('max_quality_drop', env_var('ENCORE_MAX_QUALITY_DROP', '0.05')) }}
