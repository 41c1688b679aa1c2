-- Per experiment and variant over its whole window: click-through (views per impression) and bid-through (bids
-- per impression) with 95% intervals, each treatment's difference from the control with its interval, and the
-- sample-ratio check (users per variant against the shares: chi-square over the experiment's variants).
with totals as (
    select experiment, variant, sum(users) as user_days, sum(impressions) as impressions, sum(views) as views,
           sum(bids) as bids
    from {{ ref('exp_funnel_daily') }}
    group by experiment, variant
),

users as (
    select experiment, variant, count(distinct uid) as users
    from {{ ref('exp_impressions') }}
    group by experiment, variant
),

definitions as (
    select experiment, variant, serves, is_control, share from {{ ref('experiments') }}
),

rates as (
    select
        definitions.experiment,
        definitions.variant,
        definitions.serves,
        definitions.is_control,
        definitions.share,
        coalesce(users.users, 0) as users,
        coalesce(totals.impressions, 0) as impressions,
        coalesce(totals.views, 0) as views,
        coalesce(totals.bids, 0) as bids,
        totals.views / totals.impressions as ctr,
        totals.bids / totals.impressions as btr
    from definitions
    left join users on users.experiment = definitions.experiment and users.variant = definitions.variant
    left join totals on totals.experiment = definitions.experiment and totals.variant = definitions.variant
),

with_control as (
    select
        rates.*,
        control.ctr as control_ctr,
        control.btr as control_btr,
        control.impressions as control_impressions,
        sum(rates.users) over (partition by rates.experiment) as experiment_users,
        count(*) over (partition by rates.experiment) as variants
    from rates
    join rates as control on control.experiment = rates.experiment and control.is_control
),

compared as (
    select
        *,
        ctr - 1.96 * sqrt(ctr * (1 - ctr) / impressions) as ctr_low,
        ctr + 1.96 * sqrt(ctr * (1 - ctr) / impressions) as ctr_high,
        btr - 1.96 * sqrt(btr * (1 - btr) / impressions) as btr_low,
        btr + 1.96 * sqrt(btr * (1 - btr) / impressions) as btr_high,
        ctr - control_ctr as ctr_diff,
        1.96 * sqrt(ctr * (1 - ctr) / impressions + control_ctr * (1 - control_ctr) / control_impressions)
            as ctr_diff_margin,
        btr - control_btr as btr_diff,
        1.96 * sqrt(btr * (1 - btr) / impressions + control_btr * (1 - control_btr) / control_impressions)
            as btr_diff_margin,
        pow(users - experiment_users * share, 2) / (experiment_users * share) as srm_term
    from with_control
)

select
    experiment,
    variant,
    serves,
    is_control,
    share,
    users,
    impressions,
    views,
    bids,
    ctr,
    ctr_low,
    ctr_high,
    btr,
    btr_low,
    btr_high,
    case when is_control then null else ctr_diff end as ctr_diff,
    case when is_control then null else ctr_diff - ctr_diff_margin end as ctr_diff_low,
    case when is_control then null else ctr_diff + ctr_diff_margin end as ctr_diff_high,
    case when is_control then null else abs(ctr_diff) > ctr_diff_margin end as ctr_significant,
    case when is_control then null else btr_diff end as btr_diff,
    case when is_control then null else abs(btr_diff) > btr_diff_margin end as btr_significant,
    sum(srm_term) over (partition by experiment) as srm_chi_square,
    -- chi-square's 0.1% critical value for the experiment's degrees of freedom (variants - 1): a mismatch that
    -- large means assignment or logging is broken, not that a variant is better
    sum(srm_term) over (partition by experiment) > case variants - 1 when 1 then 10.828 when 2 then 13.816
        when 3 then 16.266 when 4 then 18.467 else 20.515 end as sample_ratio_mismatch
from compared
