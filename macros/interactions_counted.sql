{#- The bids fct_user_item_interactions has counted: {through_bid_id, as_of}, as its post-hook
    (record_counted_bids) recorded them on it after its last build. A mart without them (built before they were
    kept) is refused: which pairs changed cannot be told, so it needs a --full-refresh. So is a build as of a time
    before the one it counted through. -#}
{% macro interactions_counted(mart) -%}
    {%- set counted = {'through_bid_id': 0, 'as_of': '1970-01-01 00:00:00'} -%}
    {%- if execute -%}
        {%- set recorded = table_properties(mart) -%}
        {%- if 'encore.counted_through_bid_id' not in recorded
               or not is_as_of_text(recorded.get('encore.counted_as_of')) -%}
            {{ exceptions.raise_compiler_error(mart ~ " records no bids it counted (encore.counted_through_bid_id,"
                ~ " encore.counted_as_of): build it once with --full-refresh") }}
        {%- endif -%}
        {%- do refuse_earlier_as_of(mart, recorded['encore.counted_as_of']) -%}
        {%- do counted.update({'through_bid_id': recorded['encore.counted_through_bid_id'] | int,
                               'as_of': recorded['encore.counted_as_of']}) -%}
    {%- endif -%}
    {{ return(counted) }}
{%- endmacro %}

{#- The post-hook of every build of fct_user_item_interactions: the highest staged bid id and the as-of it counted
    through, and the snapshot of the lake's copy of the staged bids it read, as table properties. The next merge
    starts above them; before it, the marts stage checks that the copy changed since that snapshot only by
    appends (python_jobs/runs/settled_bids.py), and rebuilds in full when it did not. The highest id comes from
    Iceberg's file statistics, not a scan. -#}
{% macro record_counted_bids() -%}
    {%- if execute -%}
        {%- set bids = ref('stg_raw__bids') -%}
        {%- set top = run_query("select max(bid_id) from " ~ bids).rows[0][0] -%}
        {%- set snapshot = current_snapshot(bids) -%}
        {%- if top is not none and snapshot is not none -%}
            alter table {{ this }} set tblproperties ('encore.counted_through_bid_id' = '{{ top }}',
                'encore.counted_as_of' = '{{ as_of_text() }}', 'encore.counted_bids_snapshot' = '{{ snapshot }}')
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
