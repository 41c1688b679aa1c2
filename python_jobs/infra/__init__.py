"""Clients of the services every stage talks to: the lake on S3 and the dbt runner."""
