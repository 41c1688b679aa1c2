with base as (
    select * from {{ ref('base_raw__bids') }}
)

select
    bid_id,
    uid,
    listing_id,
    bid_amount,
    bid_at
from base
where reject_reason is null
