with base as (
    select * from {{ ref('base_raw__promotions') }}
)

select
    promotion_id,
    listing_id,
    starts_at,
    ends_at
from base
where reject_reason is null
