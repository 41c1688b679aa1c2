{#- The time the marts are built as of: the run's as-of (the `as_of` var, 'YYYY-MM-DD HH:MM:SS' in UTC, which a
    backfill sets to its day; the pipeline sets ENCORE_DBT_AS_OF instead, as a changed var makes dbt parse the
    whole project again while a changed env var re-parses only the files that read it), else now for a data
    team's own `dbt run`. Bids and events after it do not exist
    yet for the run, and a listing is open when it was listed by then and had not ended. -#}
{% macro as_of() -%}
    {%- set value = as_of_setting() -%}
    {%- if value -%}
        timestamp '{{ value }}'
    {%- else -%}
        current_timestamp()
    {%- endif -%}
{%- endmacro %}

{#- The `as_of` var, else ENCORE_DBT_AS_OF, checked; '' when neither is set. -#}
{% macro as_of_setting() -%}
    {%- set value = var('as_of', env_var('ENCORE_DBT_AS_OF', '')) -%}
    {%- if value and not is_as_of_text(value) -%}
        {{ exceptions.raise_compiler_error("var as_of must be 'YYYY-MM-DD HH:MM:SS' (UTC), got " ~ value) }}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}

{% macro is_as_of_text(value) -%}
    {{ return(modules.re.fullmatch('\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}', value or '') is not none) }}
{%- endmacro %}

{#- The as-of as 'YYYY-MM-DD HH:MM:SS' text (now, in UTC, for a build with none), for what an incremental model
    records it counted through, and refusal of a build as of a time before it: the rows it recomputes would hold
    less than the rows it keeps, and nothing would bring the difference back. -#}
{% macro as_of_text() -%}
    {{ return(as_of_setting() or modules.datetime.datetime.utcnow().strftime('%Y-%m-%d %H:%M:%S')) }}
{%- endmacro %}

{% macro refuse_earlier_as_of(mart, recorded) -%}
    {%- if recorded and as_of_text() < recorded -%}
        {{ exceptions.raise_compiler_error(mart ~ " counted what came up to " ~ recorded ~ " UTC; a build as of the"
            ~ " earlier " ~ as_of_text() ~ " must rebuild it: add --full-refresh (as a backfill does)") }}
    {%- endif -%}
{%- endmacro %}
