with base as (
    select * from {{ ref('base_raw__promotions') }}
)

select
    reject_reason,
    promotion_id,
    listing_id,
    starts_at,
    ends_at
from base
where reject_reason is not null
