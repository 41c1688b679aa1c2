-- Bid activity per listing within its category and sub-category, ranked; the popularity model's input.
with interactions as (
    select * from {{ ref('fct_user_item_interactions') }}
),

per_listing as (
    select
        listing_id,
        category,
        sub_category,
        sum(bid_count) as bid_count,
        count(*) as bidder_count,
        sum(total_bid_amount) as total_bid_amount,
        max(last_bid_at) as last_bid_at
    from interactions
    group by listing_id, category, sub_category
)

select
    listing_id,
    category,
    sub_category,
    bid_count,
    bidder_count,
    total_bid_amount,
    last_bid_at,
    rank() over (partition by category order by bidder_count desc, bid_count desc) as category_rank,
    rank() over (partition by category, sub_category order by bidder_count desc, bid_count desc) as sub_category_rank
from per_listing
