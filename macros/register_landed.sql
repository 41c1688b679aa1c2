{#- Point each staging.<model> table of the Spark catalog at one run's landed Parquet (external tables:
    dropping one forgets the location, never the files). Called by the marts stage:
    dbt run-operation register_landed --args '{"tables": {"stg_raw__listings": "s3a://lake/landing/run_id=.../stg_raw__listings/"}, "lake_bucket": "lake"}'
    and usable by hand to look at an older run's landing of those tables; never for staging.stg_raw__bids, the lake's
    Iceberg copy of the bids (python_jobs/ingest/merge_landed.py), which it would drop. -#}
{% macro register_landed(tables, lake_bucket, refresh=[]) %}
  {% do adapter.execute("create database if not exists staging location 's3a://" ~ lake_bucket ~ "/warehouse/staging.db'", fetch=False) %}
  {#- the Iceberg tables other sessions have just written (the lake's copy of the bids the marts stage appended to,
      the events the events stage's stream wrote from a session of its own): this session's catalog may still cache
      the snapshot from before -#}
  {% for table in refresh %}
    {% do adapter.execute("refresh table " ~ table, fetch=False) %}
  {% endfor %}
  {% for model, location in tables.items() %}
    {% do adapter.execute("drop table if exists staging." ~ model, fetch=False) %}
    {% do adapter.execute("create table staging." ~ model ~ " using parquet location '" ~ location ~ "'", fetch=False) %}
    {#- the drop went through Iceberg's SparkSessionCatalog, which leaves Spark's cached relation of the table (the
        previous landing) in a long-lived session: without this, a second run in the same process reads the first's -#}
    {% do adapter.execute("refresh table staging." ~ model, fetch=False) %}
    {% do log("staging." ~ model ~ " -> " ~ location) %}
  {% endfor %}
{% endmacro %}
