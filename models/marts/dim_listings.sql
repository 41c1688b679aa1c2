-- One row per clean listing, with its bid activity (as of the run), whether it can be recommended and until when a
-- promotion running at the run's as-of promotes it.
with listings as (
    select * from {{ ref('stg_raw__listings') }}
),

-- the bids as of the run, by (user, listing) pair: the interactions mart counts them already (every staged bid is on
-- a clean listing), so this sums its pairs instead of grouping every bid again with a distinct count
pairs as (
    select * from {{ ref('fct_user_item_interactions') }}
),

-- the promotion running at the run's as-of (the latest ending, when a seller bought two)
promoted as (
    select listing_id, max(ends_at) as promoted_until
    from {{ ref('stg_raw__promotions') }}
    where starts_at <= {{ as_of() }} and ends_at > {{ as_of() }}
    group by listing_id
),

bid_activity as (
    select
        listing_id,
        sum(bid_count) as bid_count,
        count(*) as bidder_count,
        max(max_bid_amount) as top_bid_amount,
        max(last_bid_at) as last_bid_at
    from pairs
    group by listing_id
)

select
    listings.listing_id,
    listings.product,
    listings.category,
    listings.sub_category,
    cast(listings.listing_amount as double) as listing_amount,
    cast(listings.start_price as double) as start_price,
    listings.seller_uid,
    listings.listed_at,
    listings.ends_at,
    listings.status,
    coalesce(bid_activity.bid_count, 0) as bid_count,
    coalesce(bid_activity.bidder_count, 0) as bidder_count,
    cast(bid_activity.top_bid_amount as double) as top_bid_amount,
    bid_activity.last_bid_at,
    promoted.promoted_until,
    -- open as of the run: listed by then, not ended by then, and active unless it has ended since (a backfill
    -- sees today's status of a listing that was open on its day)
    (listings.listed_at <= {{ as_of() }} and listings.ends_at > {{ as_of() }}
        and (listings.status = 'active' or listings.ends_at <= current_timestamp())) as is_open
from listings
left join bid_activity on listings.listing_id = bid_activity.listing_id
left join promoted on listings.listing_id = promoted.listing_id
