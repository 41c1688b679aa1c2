-- One row per impression the app recorded while an experiment ran, with the variant whose list showed it: the one
-- the impression carries (`variant`, as serve answered it), or, for an impression without either (an app from
-- before impressions carried them), the user's variant recomputed from the definitions (seed `experiments`) by the
-- same hashes serve assigns with. One with a position and no variant was shown outside any experiment (a user in
-- none, or a model's list asked for by name), and a variant the definitions do not know: both are left out.
with impressions as (
    select uid, listing_id, event_at, session_id, variant as shown_in, position
    from {{ ref('stg_events__app_events') }}
    where event_type = 'impression'
),

variants as (
    select
        experiment,
        variant,
        concat(experiment, '/', variant) as variant_key,
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

recorded as (
    select variants.*, impressions.*, 'recorded' as assigned_by
    from impressions
    join variants
        on impressions.shown_in = variants.variant_key
        and impressions.event_at >= variants.starts_at
        and impressions.event_at < variants.ends_at
),

hashed as (
    select variants.*, placed.*, 'hash' as assigned_by
    from (
        select impressions.*, {{ experiment_bucket("'encore'", 'impressions.uid') }} as traffic_bucket
        from impressions
        where shown_in is null and position is null  -- an app that sends position sends the variant it was in
    ) as placed
    join variants
        on placed.event_at >= variants.starts_at
        and placed.event_at < variants.ends_at
        and placed.traffic_bucket >= variants.traffic_from
        and placed.traffic_bucket < variants.traffic_to
        and cast({{ experiment_bucket('variants.experiment', 'placed.uid') }} as double) / 10000 >= variants.share_from
        and (cast({{ experiment_bucket('variants.experiment', 'placed.uid') }} as double) / 10000 < variants.share_to
            or variants.share_to >= 1 - 1e-9)
),

placed as (
    {% for part in ['recorded', 'hashed'] %}
    select experiment, variant, serves, is_control, share, uid, listing_id, event_at, session_id, position, assigned_by
    from {{ part }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select
    experiment,
    variant,
    serves,
    is_control,
    share,
    uid,
    listing_id,
    event_at,
    cast(event_at as date) as day,
    session_id,
    position,
    assigned_by
from placed
