"""The EMR requests are plain data that botocore's own API model accepts, built from the one stage list."""

import re

import botocore.session
import pytest
from botocore.validate import ParamValidator

from orchestration.emr import EmrSettings, history_step, job_flow, maintain_step, stage_steps, thrift_step
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


THRIFT_SETTINGS = EmrSettings.from_env({"ENCORE_EMR_ARTIFACT_BUCKET": "acme-artifacts", "ENCORE_EMR_LOG_BUCKET": "acme-logs",
                                        "ENCORE_SPARK_THRIFT_SECRET_ID": "encore/spark-thrift"})


def test_add_job_flow_steps_validate_and_follow_the_stage_list():
    steps = [thrift_step(THRIFT_SETTINGS), *stage_steps(RUN_ID)]
    _validate("AddJobFlowSteps", {"JobFlowId": "j-123", "Steps": steps})
    stages = steps[1:]
    assert [s["Name"].split()[0] for s in stages] == list(NAMES)
    assert all(s["HadoopJarStep"]["Args"][-2:] == ["--run-id", RUN_ID] for s in stages)
    assert all(s["ActionOnFailure"] == "CANCEL_AND_WAIT" for s in stages)
    submitted = [s for s in stages if s["HadoopJarStep"]["Args"][0] == "spark-submit"]
    assert {s["Name"].split()[0] for s in submitted} == {"events", "marts", "validate-inputs", "train", "validate-outputs", "publish"}
    after = [history_step(RUN_ID), maintain_step(RUN_ID)]  # whatever the stages did: CONTINUE, never cancel
    _validate("AddJobFlowSteps", {"JobFlowId": "j-123", "Steps": after})
    assert [s["ActionOnFailure"] for s in after] == ["CONTINUE", "CONTINUE"]
    assert after[1]["HadoopJarStep"]["Args"][-2:] == ["encore-recs", "maintain"]


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


def test_the_emr_thrift_server_asks_for_the_secrets_credentials_and_no_step_carries_them():
    """The Thrift step names the secret, fetches the password check deploy uploaded and starts the server with Hive's
    CUSTOM auth; the history step (dbt's `emr` target) is told the secret's name too; without a secret, one line."""
    from python_jobs.stack.thrift_auth import PROVIDER_CLASS

    args = thrift_step(THRIFT_SETTINGS)["HadoopJarStep"]["Args"]
    assert args[:2] == ["bash", "-c"] and "encore/spark-thrift" in args
    assert f"s3://acme-artifacts/{THRIFT_SETTINGS.thrift_auth_key}" in args
    assert "hive.server2.authentication=CUSTOM" in args
    assert f"hive.server2.custom.authentication.class={PROVIDER_CLASS}" in args
    assert not re.search(r"THRIFT_PASSWORD=\S", " ".join(args)) and "--preserve-env=" in args[2]  # environment only
    history = " ".join(history_step(RUN_ID, THRIFT_SETTINGS.environment)["HadoopJarStep"]["Args"])
    assert "ENCORE_SPARK_THRIFT_SECRET_ID=encore/spark-thrift" in history and "ENCORE_DBT_SPARK_TARGET=emr" in history
    with pytest.raises(UserError, match="ENCORE_SPARK_THRIFT_SECRET_ID is not set"):
        thrift_step(EmrSettings(artifact_bucket="acme-artifacts", log_bucket="acme-logs"))


def test_the_thrift_credentials_come_from_secrets_manager(monkeypatch, tmp_path):
    """What the EMR Thrift step evaluates and dbt's `emr` target sends: the secret's user and password (moto stands
    in for AWS), exported so a shell gets them back exactly; a secret of another shape is one line."""
    import json
    import subprocess

    import boto3
    from moto import mock_aws

    from python_jobs.config import Settings
    from python_jobs.stack.thrift_auth import emr_exports, thrift_env

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "ENCORE_STATE_DIR": str(tmp_path),
                        "ENCORE_SPARK_THRIFT_SECRET_ID": "encore/spark-thrift"}.items():
        monkeypatch.setenv(name, value)
    password = "it's $HOME; `x` \\ \"q\" 0123456789"
    with mock_aws():
        with pytest.raises(UserError, match="ENCORE_SPARK_THRIFT_SECRET_ID='encore/spark-thrift' cannot be read"):
            thrift_env(Settings.from_env())
        client = boto3.client("secretsmanager", region_name="us-east-1")
        client.create_secret(Name="encore/spark-thrift", SecretString=json.dumps(
            {"username": "data-team", "password": password}))
        assert thrift_env(Settings.from_env()) == {"ENCORE_SPARK_THRIFT_USER": "data-team",
                                                   "ENCORE_SPARK_THRIFT_PASSWORD": password}
        exports = emr_exports()
        client.put_secret_value(SecretId="encore/spark-thrift", SecretString=json.dumps({"username": "data-team"}))
        with pytest.raises(UserError, match="is not the Thrift server's JSON"):
            thrift_env(Settings.from_env())
        client.put_secret_value(SecretId="encore/spark-thrift", SecretString=json.dumps(
            {"username": "data-team", "password": "short"}))
        with pytest.raises(UserError, match="16 characters or more"):
            thrift_env(Settings.from_env())
    shell = subprocess.run(["bash", "-c", exports + '\nprintf %s "$ENCORE_SPARK_THRIFT_PASSWORD"'],
                           capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert shell.stdout == password and not (tmp_path / "spark-thrift-password").exists()
