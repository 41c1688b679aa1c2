{# 0..9999 from the first 32 bits of SHA-256("salt:uid"): python_jobs/publish/experiments.py `bucket`, in SQL, so a
   user's variant is the same wherever it is computed. #}
{% macro experiment_bucket(salt, uid) -%}
    pmod(cast(conv(substr(sha2(concat({{ salt }}, ':', cast({{ uid }} as string)), 256), 1, 8), 16, 10) as bigint), 10000)
{%- endmacro %}
