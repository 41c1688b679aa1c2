-- Users split across an experiment's variants as its shares say (chi-square at 0.1%): a mismatch means
-- assignment or the impressions' logging is broken, and no difference between the variants can be trusted.
select experiment, variant, users, share, srm_chi_square
from {{ ref('exp_results') }}
where sample_ratio_mismatch
