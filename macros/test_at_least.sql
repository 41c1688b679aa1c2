{# Generic test: no row of the column is below `value` (nulls fail too). #}
{% test at_least(model, column_name, value) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is null or {{ column_name }} < {{ value }}
{% endtest %}
