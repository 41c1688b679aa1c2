-- One row per user, listing and day of the app's events: the signal beside the bids. event_strength weighs each
-- event type by the `event_weights` var; bid events weigh 0 here because the bids table already counts each bid.
-- Incremental (Iceberg, partitioned by event_date, dynamic INSERT OVERWRITE): a day's build recomputes in full only
-- the days its new events fall on (macros/events_days_changed.sql: the events appended since the snapshot of the
-- events table the last build read, which the post-hook records), and replaces those days' partitions in one
-- commit; the other days are left as they are. `--full-refresh` rebuilds every day.
{{ config(
    materialized='incremental',
    incremental_strategy='insert_overwrite',
    partition_by=['event_date'],
    on_schema_change='fail',
    post_hook=["{{ record_events_snapshot() }}"],
) }}
{% set weights = var('event_weights') %}
{% set days = none %}
{% if is_incremental() and execute %}
    {% set days = events_days_changed(this) %}
{% endif %}
with events as (
    select * from {{ ref('stg_events__app_events') }}
    where event_at <= {{ as_of() }}
    {%- if days is not none %}
        and cast(event_at as date) in ({{ date_list(days) if days else "null" }})
    {%- endif %}
)

select
    uid,
    listing_id,
    cast(event_at as date) as event_date,
    sum(case when event_type = 'view' then 1 else 0 end) as view_count,
    sum(case when event_type = 'watch' then 1 else 0 end) as watch_count,
    cast(coalesce(sum(watch_seconds), 0) as double) as watch_seconds,
    sum(case when event_type = 'like' then 1 else 0 end) as like_count,
    sum(case when event_type = 'share' then 1 else 0 end) as share_count,
    sum(case when event_type = 'bid' then 1 else 0 end) as bid_event_count,
    sum(case when event_type = 'impression' then 1 else 0 end) as impression_count,
    cast(sum(case event_type
        {%- for event_type, weight in weights.items() %}
        when '{{ event_type }}' then {{ weight }}
        {%- endfor %}
        else 0 end) as double) as event_strength,
    min(event_at) as first_event_at,
    max(event_at) as last_event_at
from events
group by uid, listing_id, cast(event_at as date)
