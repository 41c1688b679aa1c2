"""The EMR requests are plain data that botocore's own API model accepts, built from the one stage list."""

import botocore.session
import pytest
from botocore.validate import ParamValidator

from orchestration.emr import EmrSettings, job_flow, stage_steps, thrift_step
from orchestration.stages import NAMES
from python_jobs.errors import UserError

RUN_ID = "20261124T000000Z-daily"


def _validate(operation: str, params: dict) -> None:
    model = botocore.session.get_session().get_service_model("emr").operation_model(operation)
    report = ParamValidator().validate(params, model.input_shape)
    assert not report.has_errors(), report.generate_report()


def test_run_job_flow_validates_against_botocore():
    request = job_flow(EmrSettings(artifact_bucket="acme-artifacts", log_bucket="acme-logs", subnet_id="subnet-1"),
                       RUN_ID)
    _validate("RunJobFlow", request)
    assert request["ReleaseLabel"] == "emr-7.13.0" and request["Applications"] == [{"Name": "Spark"}]
    classifications = {c["Classification"]: c for c in request["Configurations"]}
    assert "AWSGlueDataCatalogHiveClientFactory" in str(classifications["spark-hive-site"])
    assert classifications["iceberg-defaults"]["Properties"] == {"iceberg.enabled": "true"}
    spark_defaults = classifications["spark-defaults"]["Properties"]
    assert spark_defaults["spark.sql.catalog.spark_catalog"] == "org.apache.iceberg.spark.SparkSessionCatalog"
    assert spark_defaults["spark.sql.catalog.spark_catalog.type"] == "glue"
    assert 60 <= request["AutoTerminationPolicy"]["IdleTimeout"] <= 7 * 24 * 3600


def test_add_job_flow_steps_validate_and_follow_the_stage_list():
    steps = [thrift_step(), *stage_steps(RUN_ID)]
    _validate("AddJobFlowSteps", {"JobFlowId": "j-123", "Steps": steps})
    stages = steps[1:]
    assert [s["Name"].split()[0] for s in stages] == list(NAMES)
    assert all(s["HadoopJarStep"]["Args"][-2:] == ["--run-id", RUN_ID] for s in stages)
    assert all(s["ActionOnFailure"] == "CANCEL_AND_WAIT" for s in stages)
    submitted = [s for s in stages if s["HadoopJarStep"]["Args"][0] == "spark-submit"]
    assert {s["Name"].split()[0] for s in submitted} == {"events", "marts", "validate-inputs", "train", "validate-outputs", "publish"}


def test_a_bad_run_id_never_reaches_a_request():
    with pytest.raises(UserError):
        stage_steps("../../etc")
    with pytest.raises(UserError):
        job_flow(EmrSettings(artifact_bucket="a-b-c", log_bucket="a-b-c"), "today")


def test_every_step_gets_the_emr_environment_without_secrets():
    settings = EmrSettings.from_env({"ENCORE_EMR_ARTIFACT_BUCKET": "acme-artifacts", "ENCORE_EMR_LOG_BUCKET": "acme-logs",
                                     "ENCORE_LAKE_BUCKET": "acme-lake", "ENCORE_PG_DSN": "postgresql://u:secret@db/x"})
    for step in stage_steps(RUN_ID, settings.environment):
        args = " ".join(step["HadoopJarStep"]["Args"])
        assert "ENCORE_LAKE_BUCKET=acme-lake" in args and "ENCORE_SPARK_MASTER=yarn" in args
        assert "ENCORE_PROJECT_DIR=/opt/encore-recs/project" in args and "secret" not in args
        if args.startswith("spark-submit"):
            assert "spark.yarn.appMasterEnv.ENCORE_S3_ENDPOINT=aws" in args
        else:
            assert args.startswith("env ") and " encore-recs step " in args


def test_missing_buckets_are_one_line():
    with pytest.raises(UserError, match="ENCORE_EMR_ARTIFACT_BUCKET, ENCORE_EMR_LOG_BUCKET not set"):
        EmrSettings.from_env({})


def test_on_yarn_spark_takes_the_clusters_own_catalog_and_storage():
    import dataclasses

    from python_jobs.config import Settings
    from python_jobs.stack.spark import spark_conf

    conf = spark_conf(dataclasses.replace(Settings(), spark_master="yarn", s3_endpoint=None))
    assert conf["spark.master"] == "yarn" and conf["spark.sql.catalogImplementation"] == "hive"
    assert not [key for key in conf if "jdo" in key or "extraClassPath" in key or "fs.s3a" in key], conf


def test_the_database_password_comes_from_secrets_manager_never_from_the_steps(monkeypatch):
    """On EMR the steps carry only the secret's name; the job reads it with its role (moto stands in for AWS)."""
    import json

    import boto3
    from moto import mock_aws

    from python_jobs.config import Settings

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "ENCORE_PG_SECRET_ID": "encore/db"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ENCORE_PG_DSN", raising=False)
    steps = stage_steps(RUN_ID, EmrSettings.from_env({"ENCORE_EMR_ARTIFACT_BUCKET": "acme-artifacts",
                                                      "ENCORE_EMR_LOG_BUCKET": "acme-logs",
                                                      "ENCORE_PG_SECRET_ID": "encore/db"}).environment)
    assert all("ENCORE_PG_SECRET_ID=encore/db" in " ".join(s["HadoopJarStep"]["Args"]) for s in steps)
    with mock_aws():
        with pytest.raises(UserError, match="ENCORE_PG_SECRET_ID='encore/db' cannot be read"):
            Settings.from_env()
        client = boto3.client("secretsmanager", region_name="us-east-1")
        client.create_secret(Name="encore/db", SecretString=json.dumps(
            {"username": "app", "password": "p@ss:/word", "host": "db.internal", "port": 5433, "dbname": "encore"}))
        assert Settings.from_env().pg_dsn == "postgresql://app:p%40ss%3A%2Fword@db.internal:5433/encore"
        client.put_secret_value(SecretId="encore/db", SecretString="not json")
        with pytest.raises(UserError, match="is not RDS's JSON"):
            Settings.from_env()
