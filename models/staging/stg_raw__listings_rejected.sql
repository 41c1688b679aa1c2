with base as (
    select * from {{ ref('base_raw__listings') }}
)

select
    reject_reason,
    listing_id,
    product,
    category,
    sub_category,
    listing_amount,
    start_price,
    seller_uid,
    listed_at,
    ends_at,
    status
from base
where reject_reason is not null
