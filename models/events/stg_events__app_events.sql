-- One row per app event: the bronze table deduplicated on event_id (a resend, or a Firehose retry, lands twice).
with bronze as (
    select * from {{ source('events', 'bronze_app_events') }}
),

ranked as (
    select
        *,
        row_number() over (partition by event_id order by received_at, source_object) as copy_number
    from bronze
)

select
    event_id,
    type as event_type,
    uid,
    listing_id,
    event_at,
    received_at,
    session_id,
    watch_seconds,
    variant,
    position
from ranked
where copy_number = 1
