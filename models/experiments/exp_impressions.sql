-- One row per impression the app recorded while an experiment ran, with the variant its user was in: assignment
-- recomputed from the definitions (seed `experiments`) by the same hashes serve uses, so no table of assignments.
with impressions as (
    select uid, listing_id, event_at, session_id
    from {{ ref('stg_events__app_events') }}
    where event_type = 'impression'
),

variants as (
    select
        experiment,
        variant,
        serves,
        is_control,
        share,
        traffic_from,
        traffic_to,
        cast(starts_at as timestamp) as starts_at,
        cast(ends_at as timestamp) as ends_at,
        -- the variant's slice of the experiment's hash: variants in name order, as `assign` walks them
        coalesce(sum(share) over (partition by experiment order by variant
            rows between unbounded preceding and 1 preceding), 0) as share_from,
        sum(share) over (partition by experiment order by variant rows between unbounded preceding and current row)
            as share_to
    from {{ ref('experiments') }}
),

placed as (
    select
        impressions.*,
        {{ experiment_bucket("'encore'", 'impressions.uid') }} as traffic_bucket
    from impressions
)

select
    variants.experiment,
    variants.variant,
    variants.serves,
    variants.is_control,
    variants.share,
    placed.uid,
    placed.listing_id,
    placed.event_at,
    cast(placed.event_at as date) as day,
    placed.session_id
from placed
join variants
    on placed.event_at >= variants.starts_at
    and placed.event_at < variants.ends_at
    and placed.traffic_bucket >= variants.traffic_from
    and placed.traffic_bucket < variants.traffic_to
    and cast({{ experiment_bucket('variants.experiment', 'placed.uid') }} as double) / 10000 >= variants.share_from
    and (cast({{ experiment_bucket('variants.experiment', 'placed.uid') }} as double) / 10000 < variants.share_to
        or variants.share_to >= 1 - 1e-9)
