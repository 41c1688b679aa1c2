with base as (
    select * from {{ ref('base_raw__users') }}
)

select
    reject_reason,
    uid,
    user_name,
    email,
    signup_at
from base
where reject_reason is not null
