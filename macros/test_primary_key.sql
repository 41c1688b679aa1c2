{# Generic test: the columns form a key, none of them null and no two rows sharing them; one scan where
   not_null and unique (or unique_combination) per column would take one each. #}
{% test primary_key(model, columns) %}
select {{ columns | join(', ') }}, count(*) as copies
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1{% for column in columns %} or {{ column }} is null{% endfor %}
{% endtest %}
