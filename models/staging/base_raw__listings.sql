{{ config(materialized='table') }}
-- Every raw listing row once, normalised, with the reason it cannot be used (null when clean).
with listings as (
    select * from {{ source('raw', 'listings') }}
),

taxonomy as (
    select * from {{ ref('category_taxonomy') }}
),

normalised as (
    select
        listing_id,
        trim(product) as product,
        {{ normalise_text('category') }} as category,
        {{ normalise_text('sub_category') }} as sub_category,
        listing_amount,
        start_price,
        seller_uid,
        listed_at,
        ends_at,
        {{ normalise_text('status') }} as status
    from listings
),

ranked as (
    select
        normalised.*,
        taxonomy.category is not null as in_taxonomy,
        row_number() over (
            partition by normalised.listing_id order by normalised.listed_at nulls last, normalised.product
        ) as copy_number
    from normalised
    left join taxonomy
        on normalised.category = taxonomy.category
        and normalised.sub_category = taxonomy.sub_category
)

select
    listing_id,
    product,
    category,
    sub_category,
    listing_amount,
    start_price,
    seller_uid,
    listed_at,
    ends_at,
    status,
    case
        when listing_id is null then 'missing_key'
        when copy_number > 1 then 'duplicate'
        when not in_taxonomy then 'unknown_category'
        when listing_amount is null or listing_amount <= 0 or start_price is null or start_price <= 0
            then 'invalid_amount'
        when listed_at is null or ends_at is null or ends_at <= listed_at then 'invalid_window'
    end as reject_reason
from ranked
