{{ config(materialized='table') }}
-- Every raw user row once, normalised, with the reason it cannot be used (null when clean).
with users as (
    select * from {{ source('raw', 'users') }}
),

normalised as (
    select
        uid,
        trim(user_name) as user_name,
        {{ normalise_text('email') }} as email,
        signup_at
    from users
),

ranked as (
    select
        *,
        row_number() over (partition by uid order by signup_at nulls last, email) as uid_copy,
        row_number() over (partition by email order by signup_at nulls last, uid) as email_copy
    from normalised
)

select
    uid,
    user_name,
    email,
    signup_at,
    case
        when uid is null then 'missing_key'
        when email is null or position('@' in email) = 0 then 'invalid_email'
        when uid_copy > 1 or email_copy > 1 then 'duplicate'
    end as reject_reason
from ranked
