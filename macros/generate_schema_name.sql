{# Use the folder's schema (staging, marts) as-is on every target, so that the
   Spark copy of a staging model has the same schema and name as in Postgres. #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name | trim if custom_schema_name is not none else target.schema }}
{%- endmacro %}
