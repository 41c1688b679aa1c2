with base as (
    select * from {{ ref('base_raw__users') }}
)

select
    uid,
    user_name,
    email,
    signup_at
from base
where reject_reason is null
