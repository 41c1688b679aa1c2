-- One row per clean user with the segment that decides which model serves them.
with users as (
    select * from {{ ref('stg_raw__users') }}
),

-- the bids as of the run, by (user, listing) pair (the interactions mart), not every bid grouped again
pairs as (
    select * from {{ ref('fct_user_item_interactions') }}
),

interests as (
    select * from {{ ref('stg_raw__user_interests') }}
),

bid_counts as (
    select uid, sum(bid_count) as bid_count, count(*) as listing_count
    from pairs
    group by uid
),

interest_counts as (
    select uid, count(*) as interest_count
    from interests
    group by uid
)

select
    users.uid,
    users.user_name,
    users.signup_at,
    coalesce(bid_counts.bid_count, 0) as bid_count,
    coalesce(bid_counts.listing_count, 0) as listing_count,
    coalesce(interest_counts.interest_count, 0) as interest_count,
    case
        when bid_counts.bid_count is not null then 'bidder'
        when interest_counts.interest_count is not null then 'cold_start'
        else 'unknown'
    end as segment
from users
left join bid_counts on users.uid = bid_counts.uid
left join interest_counts on users.uid = interest_counts.uid
