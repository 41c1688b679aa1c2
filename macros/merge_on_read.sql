{#- Iceberg's row-level writes as merge-on-read (delete files beside the data, compacted by maintenance) rather
    than copy-on-write (every data file holding a changed row rewritten): for the incremental marts. -#}
{% macro merge_on_read() -%}
    {{ return({'write.merge.mode': 'merge-on-read', 'write.update.mode': 'merge-on-read',
               'write.delete.mode': 'merge-on-read'}) }}
{%- endmacro %}

{#- The same properties as `alter table ... set tblproperties (...)` text: a table built before them gains them at
    its next incremental build. -#}
{% macro merge_on_read_sql() -%}
    {%- for key, value in merge_on_read().items() -%}
        '{{ key }}' = '{{ value }}'{{ ", " if not loop.last }}
    {%- endfor -%}
{%- endmacro %}
