{#- The run history's raw rows: external JSON tables history.<table> over s3a://<lake>/history/<table>/, where
    python_jobs/history/run_history.py puts one object per run. Created when missing, then refreshed so that this
    session lists the newest objects. Called before the history marts are built:
    dbt run-operation register_history --args '{"lake_bucket": "encore-lake"}' -#}

{% macro register_history(lake_bucket) %}
  {% set history_tables = {
      "runs": "run_id string, started_at string, as_of string, backfill boolean, status string, failed_stage string,
               error string, refused string, total_seconds double, interactions bigint, tuning_source string,
               catalog_coverage double, hybrid_ndcg double, gate_outcome string, champion_run string,
               champion_ndcg double, challenger_ndcg double, quality_drop double, max_quality_drop double,
               accepted_by string, events_ingested bigint, events_quarantined bigint, report string,
               data_docs string, list_sources string, recorded_at string",
      "run_stages": "run_id string, stage string, status string, seconds double, python_mb double, jvm_mb double,
                     spark_jobs bigint, finished_at string",
      "run_rejects": "run_id string, table_name string, reason string, rejected_rows bigint, raw_rows bigint,
                      clean_rows bigint",
      "run_checkpoints": "run_id string, checkpoint string, success boolean, evaluated bigint,
                          failed_expectations bigint, engine string",
      "run_metrics": "run_id string, model string, segment string, metric string, value double",
      "run_experiments": "run_id string, experiment string, variant string, serves string, is_control boolean,
                          users bigint, impressions bigint, views bigint, bids bigint, ctr double, ctr_low double,
                          ctr_high double, btr double, ctr_diff double, ctr_diff_low double, ctr_diff_high double,
                          ctr_significant boolean, btr_diff double, btr_significant boolean,
                          sample_ratio_mismatch boolean",
      "run_snapshots": "run_id string, table_name string, snapshot_id bigint, tag string, found_by string",
  } %}
  {% do adapter.execute("create database if not exists history location 's3a://" ~ lake_bucket ~ "/warehouse/history.db'", fetch=False) %}
  {% for table, columns in history_tables.items() %}
    {% do adapter.execute("create table if not exists history." ~ table ~ " (" ~ columns ~ ") using json location 's3a://"
                          ~ lake_bucket ~ "/history/" ~ table ~ "/'", fetch=False) %}
    {% do adapter.execute("refresh table history." ~ table, fetch=False) %}
  {% endfor %}
{% endmacro %}
