{# Generic test: the columns form a key, none of them null and no two rows sharing them; one scan where
   not_null and unique (or unique_combination) per column would take one each. `valid`: conditions every row
   must meet as well (a null counts as failing), checked in the same scan: on a large model (the app's events)
   each separate test is another pass over it. #}
{% test primary_key(model, columns, valid=[]) %}
select {{ columns | join(', ') }}, count(*) as copies
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1{% for column in columns %} or {{ column }} is null{% endfor %}
{%- for condition in valid %}
    or sum(case when {{ condition }} then 0 else 1 end) > 0
{%- endfor %}
{% endtest %}
