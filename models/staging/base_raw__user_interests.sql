{{ config(materialized='table') }}
-- Every raw questionnaire answer once, normalised, with the reason it cannot be used (null when clean).
with interests as (
    select * from {{ source('raw', 'user_interests') }}
),

users as (
    select uid from {{ ref('stg_raw__users') }}
),

taxonomy as (
    select * from {{ ref('category_taxonomy') }}
),

normalised as (
    select
        uid,
        {{ normalise_text('category') }} as category,
        {{ normalise_text('sub_category') }} as sub_category,
        answered_at
    from interests
),

ranked as (
    select
        normalised.*,
        users.uid is not null as known_user,
        taxonomy.category is not null as in_taxonomy,
        row_number() over (
            partition by normalised.uid, normalised.category, normalised.sub_category
            order by normalised.answered_at nulls last
        ) as copy_number
    from normalised
    left join users on normalised.uid = users.uid
    left join taxonomy
        on normalised.category = taxonomy.category
        and normalised.sub_category = taxonomy.sub_category
)

select
    uid,
    category,
    sub_category,
    answered_at,
    case
        when uid is null or category is null then 'missing_key'
        when not known_user then 'unknown_user'
        when not in_taxonomy then 'unknown_category'
        when copy_number > 1 then 'duplicate'
    end as reject_reason
from ranked
