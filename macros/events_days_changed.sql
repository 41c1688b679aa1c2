{#- For the incremental fct_user_item_events: which days a build recomputes, and what it records for the next one.

    The deduplicated events (stg_events__app_events) are only ever appended to between full refreshes, so the
    rows a build has not counted yet are those added since the events table's snapshot the last build read. That
    snapshot id is kept in the mart's tblproperties (`encore.events_snapshot`, set by the post-hook). A day is
    recomputed in full, from all of its events, when a new event falls on it (a batch may carry late events of
    earlier days), and so is every day from the newest the mart holds on: events past the last build's as-of (the
    next day's run holds one such day; after a build as of an earlier day, every day since). -#}

{#- The post-hook of every build of fct_user_item_events: the events table's snapshot it read, and its as-of. -#}
{% macro record_events_snapshot() -%}
    {%- if execute -%}
        {%- set rows = run_query("select snapshot_id from " ~ ref('stg_events__app_events') ~ ".history"
                                 ~ " where is_current_ancestor order by made_current_at desc limit 1").rows -%}
        {%- if rows -%}
            alter table {{ this }} set tblproperties ('encore.events_snapshot' = '{{ rows[0][0] }}',
                'encore.events_as_of' = '{{ as_of_text() }}')
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- The days (as 'YYYY-MM-DD' strings) the incremental build recomputes; none: every day, when the snapshot the
    last build read is no longer there to compare with (maintenance expires old snapshots). A mart built before it
    was incremental (unpartitioned, no record) is refused: overwriting its days would replace the whole table; so
    is a build as of a time before the last build's (`encore.events_as_of`). -#}
{% macro events_days_changed(mart) -%}
    {%- set recorded = table_properties(mart) -%}
    {%- if 'encore.events_snapshot' not in recorded -%}
        {{ exceptions.raise_compiler_error(mart ~ " was built before it was incremental (it records no snapshot of"
            ~ " the events it read): build it once with --full-refresh") }}
    {%- endif -%}
    {%- set built = recorded['encore.events_snapshot'] | int -%}
    {%- do refuse_earlier_as_of(mart, recorded.get('encore.events_as_of')) -%}
    {%- set events = ref('stg_events__app_events') -%}
    {%- if run_query("select count(*) from " ~ events ~ ".snapshots where snapshot_id = " ~ built).rows[0][0] == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set days = run_query(
        "select distinct cast(cast(event_at as date) as string) from " ~ events
        ~ " where ingest_batch not in (select distinct ingest_batch from " ~ events ~ " version as of " ~ built ~ ")"
        ~ " or cast(event_at as date) >= (select coalesce(max(event_date), date '1970-01-01') from " ~ mart ~ ")"
        ).columns[0].values() -%}
    {{ return(days | sort | list) }}
{%- endmacro %}

{#- The same days as a SQL list of date literals. -#}
{% macro date_list(days) -%}
    {%- for day in days -%}date '{{ day }}'{{ ", " if not loop.last }}{%- endfor -%}
{%- endmacro %}
