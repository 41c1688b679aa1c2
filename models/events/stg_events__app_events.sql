-- One row per app event: the bronze table deduplicated on event_id (a resend, or a Firehose retry, lands twice),
-- the first copy ingested kept (the earliest batch, then the earliest received).
-- Incremental (an Iceberg table appended to): a day's build reads only the bronze batches (partitions
-- `ingest_batch`, one per micro-batch of the events stage, named in its filter so that Iceberg reads only those)
-- with an id above the highest it read before (recorded on
-- the table by its post-hook: macros/bronze_read.sql), keeps the first copy of each id among them and leaves out the
-- ids the table already holds. So the marts and tests that read the events no longer each deduplicate all of
-- history, and a day costs its own events. `--full-refresh` rebuilds it from all of bronze; the marts stage asks for
-- one when bronze lost a batch this table read (`generate` replaced the events, and the events stage started bronze
-- afresh).
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    file_format='iceberg',
    on_schema_change='fail',
    post_hook=["{{ record_bronze_read() }}"],
) }}

{% set batches = none %}
{% if is_incremental() and execute %}
    {% set batches = bronze_batches_after(bronze_read_through(this)) %}
{% endif %}

with bronze as (
    select * from {{ source('events', 'bronze_app_events') }}
    {% if batches is not none %}
    where {% if batches %}ingest_batch in ('{{ batches | join("', '") }}'){% else %}false{% endif %}
    {% endif %}
),

ranked as (
    select
        *,
        -- the batch first: a copy an earlier batch ingested is the one the incremental build already holds
        row_number() over (partition by event_id order by ingest_batch, received_at, source_object) as copy_number
    from bronze
),

firsts as (
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
        position,
        ingest_batch
    from ranked
    where copy_number = 1
)

select firsts.* from firsts
{% if is_incremental() %}
left anti join {{ this }} as built on firsts.event_id = built.event_id
{% endif %}
