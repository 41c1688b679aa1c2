-- One row per user and listing they bid on: the implicit feedback ALS learns from.
with bids as (
    select * from {{ ref('stg_raw__bids') }}
    where bid_at <= {{ as_of() }}
),

listings as (
    select listing_id, category, sub_category from {{ ref('stg_raw__listings') }}
)

select
    bids.uid,
    bids.listing_id,
    listings.category,
    listings.sub_category,
    count(*) as bid_count,
    cast(sum(bids.bid_amount) as double) as total_bid_amount,
    cast(max(bids.bid_amount) as double) as max_bid_amount,
    min(bids.bid_at) as first_bid_at,
    max(bids.bid_at) as last_bid_at
from bids
inner join listings on bids.listing_id = listings.listing_id
group by bids.uid, bids.listing_id, listings.category, listings.sub_category
