-- One row per run, experiment and variant: the experiment marts as each run measured them.
select run_id, experiment, variant, serves, is_control, users, impressions, views, bids, ctr, ctr_low, ctr_high, btr, ctr_diff, ctr_diff_low, ctr_diff_high, ctr_significant, btr_diff, btr_significant, sample_ratio_mismatch
from {{ source('history', 'run_experiments') }}
