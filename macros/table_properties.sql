{#- A table's properties as a dict (`show tblproperties`): what the incremental marts recorded on themselves. -#}
{% macro table_properties(relation) -%}
    {%- set properties = {} -%}
    {%- for row in run_query("show tblproperties " ~ relation).rows -%}
        {%- do properties.update({row[0]: row[1]}) -%}
    {%- endfor -%}
    {{ return(properties) }}
{%- endmacro %}

{#- The id of a table's current snapshot (none before its first commit). -#}
{% macro current_snapshot(relation) -%}
    {%- set rows = run_query("select snapshot_id from " ~ relation ~ ".history where is_current_ancestor"
                             ~ " order by made_current_at desc limit 1").rows -%}
    {{ return(rows[0][0] if rows else none) }}
{%- endmacro %}
