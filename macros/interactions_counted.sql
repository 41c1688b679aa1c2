{#- The bids fct_user_item_interactions has counted: {through_bid_id, as_of}, as its post-hook
    (record_counted_bids) recorded them on it after its last build. A mart without them (built before they were
    kept) is refused: which pairs changed cannot be told, so it needs a --full-refresh. So is a build as of a time
    before the one it counted through. -#}
{% macro interactions_counted(mart) -%}
    {%- set ns = namespace(through=none, as_of=none) -%}
    {%- if execute -%}
        {%- for row in run_query("show tblproperties " ~ mart).rows -%}
            {%- if row[0] == 'encore.counted_through_bid_id' -%}{%- set ns.through = row[1] | int -%}{%- endif -%}
            {%- if row[0] == 'encore.counted_as_of' -%}{%- set ns.as_of = row[1] -%}{%- endif -%}
        {%- endfor -%}
        {%- if ns.through is none or ns.as_of is none
               or not modules.re.fullmatch('\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}', ns.as_of) -%}
            {{ exceptions.raise_compiler_error(mart ~ " records no bids it counted (encore.counted_through_bid_id,"
                ~ " encore.counted_as_of): build it once with --full-refresh") }}
        {%- endif -%}
        {%- do refuse_earlier_as_of(mart, ns.as_of) -%}
    {%- endif -%}
    {{ return({'through_bid_id': ns.through if ns.through is not none else 0,
               'as_of': ns.as_of or '1970-01-01 00:00:00'}) }}
{%- endmacro %}

{#- The post-hook of every build of fct_user_item_interactions: the highest staged bid id, the as-of, and the
    fingerprint of the bids up to that id (all of them, now), as table properties. The next merge starts above
    them; before it, the marts stage checks the same fingerprint over the same bids
    (python_jobs/runs/settled_bids.py, which holds the same hash) and rebuilds in full when it changed. -#}
{% macro record_counted_bids() -%}
    {%- if execute -%}
        {%- set row = run_query("select max(bid_id), count(*), "
            ~ "coalesce(bit_xor(xxhash64(bid_id, uid, listing_id, bid_amount, bid_at)), 0) from "
            ~ ref('stg_raw__bids')).rows[0] -%}
        {%- if row[0] is not none -%}
            alter table {{ this }} set tblproperties ('encore.counted_through_bid_id' = '{{ row[0] }}',
                'encore.counted_as_of' = '{{ as_of_text() }}', 'encore.counted_bids_count' = '{{ row[1] }}',
                'encore.counted_bids_xor' = '{{ row[2] }}')
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
