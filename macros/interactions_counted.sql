{#- The bids fct_user_item_interactions has counted, as python_jobs/runs/settled_bids.py recorded them on it after
    its last build: {through_bid_id, as_of}. A mart without them (built by hand since, or before they were kept) is
    refused: which pairs changed cannot be told, so it needs a --full-refresh. -#}
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
    {%- endif -%}
    {{ return({'through_bid_id': ns.through if ns.through is not none else 0,
               'as_of': ns.as_of or '1970-01-01 00:00:00'}) }}
{%- endmacro %}
