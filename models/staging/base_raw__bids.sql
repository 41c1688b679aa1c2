{{ config(materialized='table') }}
-- Every raw bid row once, with the reason it cannot be used (null when clean).
with bids as (
    select * from {{ source('raw', 'bids') }}
),

users as (
    select uid from {{ ref('stg_raw__users') }}
),

listings as (
    select listing_id, listing_amount, listed_at, ends_at from {{ ref('stg_raw__listings') }}
),

ranked as (
    select
        *,
        row_number() over (partition by bid_id order by bid_at nulls last, uid, bid_amount) as copy_number
    from bids
),

joined as (
    select
        ranked.*,
        users.uid is not null as known_user,
        listings.listing_id is not null as known_listing,
        listings.listing_amount,
        listings.listed_at,
        listings.ends_at
    from ranked
    left join users on ranked.uid = users.uid
    left join listings on ranked.listing_id = listings.listing_id
)

select
    bid_id,
    uid,
    listing_id,
    bid_amount,
    bid_at,
    case
        when bid_id is null or uid is null or listing_id is null or bid_at is null then 'missing_key'
        when copy_number > 1 then 'duplicate'
        when not known_user then 'unknown_user'
        when not known_listing then 'unknown_listing'
        when bid_amount is null or bid_amount <= 0 then 'invalid_amount'
        when bid_amount > 100 * listing_amount then 'absurd_amount'
        when bid_at > now() then 'future_timestamp'
        when bid_at < listed_at or bid_at > ends_at then 'outside_auction_window'
    end as reject_reason
from joined
