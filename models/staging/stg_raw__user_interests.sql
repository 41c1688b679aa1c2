with base as (
    select * from {{ ref('base_raw__user_interests') }}
)

select
    uid,
    category,
    sub_category,
    answered_at
from base
where reject_reason is null
