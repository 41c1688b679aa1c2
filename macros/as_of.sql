{#- The time the marts are built as of: the run's as-of (the `as_of` var, 'YYYY-MM-DD HH:MM:SS' in UTC, which a
    backfill sets to its day; the pipeline sets ENCORE_DBT_AS_OF instead, as a changed var makes dbt parse the
    whole project again while a changed env var re-parses only the files that read it), else now for a data
    team's own `dbt run`. Bids and events after it do not exist
    yet for the run, and a listing is open when it was listed by then and had not ended. -#}
{% macro as_of() -%}
    {%- set value = var('as_of', env_var('ENCORE_DBT_AS_OF', '')) -%}
    {%- if value -%}
        {%- if not modules.re.fullmatch('\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}', value) -%}
            {{ exceptions.raise_compiler_error("var as_of must be 'YYYY-MM-DD HH:MM:SS' (UTC), got " ~ value) }}
        {%- endif -%}
        timestamp '{{ value }}'
    {%- else -%}
        current_timestamp()
    {%- endif -%}
{%- endmacro %}
