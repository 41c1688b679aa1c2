{# Lower-case, trim and collapse inner whitespace: how categories and emails are compared. #}
{% macro normalise_text(column) -%}
    lower(regexp_replace(trim({{ column }}), '\s+', ' ', 'g'))
{%- endmacro %}
