-- Business rule: a clean bid is positive and falls inside its listing's auction window.
with bids as (
    select * from {{ ref('stg_raw__bids') }}
),

listings as (
    select * from {{ ref('stg_raw__listings') }}
)

select bids.bid_id, bids.bid_at, bids.bid_amount, listings.listed_at, listings.ends_at
from bids
inner join listings on bids.listing_id = listings.listing_id
where bids.bid_at < listings.listed_at
    or bids.bid_at > listings.ends_at
    or bids.bid_amount <= 0
