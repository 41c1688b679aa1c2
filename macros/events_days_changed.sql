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
        {%- set snapshot = current_snapshot(ref('stg_events__app_events')) -%}
        {%- if snapshot is not none -%}
            alter table {{ this }} set tblproperties ('encore.events_snapshot' = '{{ snapshot }}',
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
    {%- if run_query("select count(*) from " ~ events ~ ".history where is_current_ancestor and snapshot_id = "
                     ~ built).rows[0][0] == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {#- the newest day the mart holds, as a bound on event_at (a bound on the column itself lets Iceberg skip the
        files whose events all fall before it, which a bound on its date would not) -#}
    {%- set newest = run_query("select cast(max(event_date) as string) from " ~ mart).rows[0][0] or '1970-01-01' -%}
    {%- set queries = ["select distinct cast(cast(event_at as date) as string) from " ~ events
                       ~ " where event_at >= timestamp '" ~ newest ~ " 00:00:00'"] -%}
    {%- if current_snapshot(events) | int != built -%}
        {#- the events appended since the snapshot the last build read: Iceberg reads only the files added since
            (the events table is only appended to between full refreshes, which drop its snapshots) -#}
        {%- do run_query("call spark_catalog.system.create_changelog_view(table => '" ~ events ~ "', options => "
                         ~ "map('start-snapshot-id', '" ~ built ~ "'), changelog_view => 'encore_events_added')") -%}
        {%- do queries.append("select distinct cast(cast(event_at as date) as string) from encore_events_added") -%}
    {%- endif -%}
    {%- set days = run_query(queries | join(" union ")).columns[0].values() -%}
    {{ return(days | sort | list) }}
{%- endmacro %}

{#- The same days as a SQL list of date literals. -#}
{% macro date_list(days) -%}
    {%- for day in days -%}date '{{ day }}'{{ ", " if not loop.last }}{%- endfor -%}
{%- endmacro %}
