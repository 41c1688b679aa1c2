"""The DAG file MWAA (or a local Airflow) parses: `encore_recs`, daily.

Plain settings from the environment (no Airflow Variables or Connections at parse time):
- ENCORE_DAG_BACKEND: `emr` (the default, production) or `local` (the local stack);
- ENCORE_DAG_POLL_SECONDS (60): how often a stage's task asks EMR about its step;
- ENCORE_DAG_RETRIES (2) and ENCORE_DAG_RETRY_SECONDS (120, doubling): for the retry-safe stages.
See orchestration/airflow_dag.py for the shape.
"""

import os

from orchestration.airflow_dag import build_dag

dag = build_dag(
    os.environ.get("ENCORE_DAG_BACKEND", "emr"),
    poll_seconds=int(os.environ.get("ENCORE_DAG_POLL_SECONDS", "60")),
    retries=int(os.environ.get("ENCORE_DAG_RETRIES", "2")),
    retry_seconds=int(os.environ.get("ENCORE_DAG_RETRY_SECONDS", "120")),
)
