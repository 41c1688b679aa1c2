-- Questionnaire answers of clean users, the cold-start signal.
with interests as (
    select * from {{ ref('stg_raw__user_interests') }}
)

select
    uid,
    category,
    sub_category,
    answered_at
from interests
