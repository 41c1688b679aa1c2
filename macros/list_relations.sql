{#- dbt-spark lists a schema's tables with `show table extended`, which under Iceberg's SparkSessionCatalog reports
    every Iceberg table as `Provider: hive` (dbt-adapters #1431). dbt then takes the marts for Hive tables: a
    `table` model is dropped before it is rebuilt (no atomic `create or replace`, history lost) and an incremental
    one is not merged as Iceberg. The metastore entry still says `table_type=ICEBERG`; the rows are given the
    provider they have. dbt-spark reads each row as (schema, name, temporary, information). -#}
{% macro spark__list_relations_without_caching(relation) %}
  {% call statement('list_relations_without_caching', fetch_result=True) -%}
    show table extended in {{ relation.schema }} like '*'
  {% endcall %}
  {% set rows = [] %}
  {% for row in load_result('list_relations_without_caching').table %}
    {% set information = row[3] %}
    {% if 'table_type=ICEBERG' in information %}
      {% set information = information.replace('Provider: hive', 'Provider: iceberg') %}
    {% endif %}
    {% do rows.append([row[0], row[1], row[2], information]) %}
  {% endfor %}
  {% do return(rows) %}
{% endmacro %}
