"""Scheduling: the local runner (used by `encore-recs run`), the Airflow DAG for MWAA, EMR job definitions."""
