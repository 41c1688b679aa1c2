-- Per experiment, variant and day: who saw lists, and how far the impressions went. An impression counts as
-- viewed, watched or bid on when its user acted on that listing within a day after it (each impression once).
with impressions as (
    select * from {{ ref('exp_impressions') }}
),

responses as (
    select uid, listing_id, event_type, event_at
    from {{ ref('stg_events__app_events') }}
    where event_type in ('view', 'watch', 'bid')
),

followed as (
    select
        impressions.experiment,
        impressions.variant,
        impressions.day,
        impressions.uid,
        impressions.listing_id,
        impressions.event_at,
        max(case when responses.event_type = 'view' then 1 else 0 end) as viewed,
        max(case when responses.event_type = 'watch' then 1 else 0 end) as watched,
        max(case when responses.event_type = 'bid' then 1 else 0 end) as bid
    from impressions
    left join responses
        on responses.uid = impressions.uid
        and responses.listing_id = impressions.listing_id
        and responses.event_at >= impressions.event_at
        and responses.event_at < impressions.event_at + interval 1 day
    group by 1, 2, 3, 4, 5, 6
)

select
    experiment,
    variant,
    day,
    count(distinct uid) as users,
    count(*) as impressions,
    sum(viewed) as views,
    sum(watched) as watches,
    sum(bid) as bids
from followed
group by experiment, variant, day
