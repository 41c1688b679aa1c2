{{ config(materialized='table') }}
-- Every raw promotion row once, with the reason it cannot be used (null when clean).
with promotions as (
    select * from {{ source('raw', 'promotions') }}
),

listings as (
    select listing_id from {{ ref('stg_raw__listings') }}
),

ranked as (
    select
        *,
        row_number() over (partition by promotion_id order by starts_at nulls last, listing_id) as copy_number
    from promotions
)

select
    ranked.promotion_id,
    ranked.listing_id,
    ranked.starts_at,
    ranked.ends_at,
    case
        when ranked.promotion_id is null or ranked.listing_id is null or ranked.starts_at is null
            or ranked.ends_at is null then 'missing_key'
        when ranked.copy_number > 1 then 'duplicate'
        when listings.listing_id is null then 'unknown_listing'
        when ranked.ends_at <= ranked.starts_at then 'invalid_window'
    end as reject_reason
from ranked
left join listings on ranked.listing_id = listings.listing_id
