"""The EMR requests, as plain data built from the one stage list: a transient cluster per daily run, one step per stage.

No AWS call here: a DAG task (or a test) hands these dicts to boto3 / the Amazon provider's operators.
The Thrift server (port 10001, 10000 is Hive's) is a step of its own so the data team's dbt can reach
the day's cluster; the Glue Data Catalog is the metastore shared by the steps and the Thrift server.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestration.stages import STAGES
from python_jobs.run_state import check_run_id

RELEASE_LABEL = "emr-7.13.0"  # Spark 3.5.6, the line the project pins
GLUE_CLIENT_FACTORY = "com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory"
THRIFT_PORT = 10001
SITE_PACKAGES = "/usr/local/lib/python3.11/site-packages"  # where the bootstrap action installs the wheel


@dataclass(frozen=True)
class EmrSettings:
    """What an account supplies (DAG params or environment read inside a task, never at parse time)."""

    artifact_bucket: str
    log_bucket: str
    service_role: str = "EMR_DefaultRole_V2"
    instance_profile: str = "EMR_EC2_DefaultRole"
    subnet_id: str | None = None
    primary_instance_type: str = "m6g.xlarge"
    core_instance_type: str = "m6g.xlarge"
    core_instances: int = 2
    idle_timeout_seconds: int = 3600
    wheel_key: str = "encore/dist/encore_recs-0.1.0-py3-none-any.whl"
    bootstrap_key: str = "encore/bootstrap/install_wheel.sh"
    environment: dict[str, str] = field(default_factory=dict)  # ENCORE_* for the steps (no secrets: roles)


def job_flow(settings: EmrSettings, run_id: str) -> dict:
    """RunJobFlow: Spark on EMR 7.13, Python 3.11, Glue as the catalog, the project's wheel on every node."""
    check_run_id(run_id)
    instances = {
        "InstanceGroups": [
            {"Name": "primary", "InstanceRole": "MASTER", "InstanceType": settings.primary_instance_type,
             "InstanceCount": 1},
            {"Name": "core", "InstanceRole": "CORE", "InstanceType": settings.core_instance_type,
             "InstanceCount": settings.core_instances},
        ],
        "KeepJobFlowAliveWhenNoSteps": True,  # steps come after creation; the teardown task terminates it
        "TerminationProtected": False,
    }
    if settings.subnet_id:
        instances["Ec2SubnetId"] = settings.subnet_id
    step_env = {"PYSPARK_PYTHON": "/usr/bin/python3.11", **settings.environment}
    return {
        "Name": f"encore-recs-{run_id}",
        "ReleaseLabel": RELEASE_LABEL,
        "Applications": [{"Name": "Spark"}],
        "LogUri": f"s3://{settings.log_bucket}/emr-logs/{run_id}/",
        "Instances": instances,
        "BootstrapActions": [{
            "Name": "install the encore-recs wheel (EMR brings its own Spark)",
            "ScriptBootstrapAction": {
                "Path": f"s3://{settings.artifact_bucket}/{settings.bootstrap_key}",
                "Args": [f"s3://{settings.artifact_bucket}/{settings.wheel_key}"],
            },
        }],
        "Configurations": [
            {"Classification": "spark-hive-site",
             "Properties": {"hive.metastore.client.factory.class": GLUE_CLIENT_FACTORY}},
            {"Classification": "spark-env", "Configurations": [
                {"Classification": "export", "Properties": step_env}]},
            {"Classification": "spark-defaults",
             "Properties": {"spark.sql.catalogImplementation": "hive", "spark.pyspark.python": "/usr/bin/python3.11"}},
        ],
        "AutoTerminationPolicy": {"IdleTimeout": settings.idle_timeout_seconds},
        "ServiceRole": settings.service_role,
        "JobFlowRole": settings.instance_profile,
        "VisibleToAllUsers": True,
        "Tags": [{"Key": "project", "Value": "encore-recs"}, {"Key": "run_id", "Value": run_id}],
    }


def _command_runner(name: str, args: list[str], on_failure: str = "CANCEL_AND_WAIT") -> dict:
    return {"Name": name, "ActionOnFailure": on_failure,
            "HadoopJarStep": {"Jar": "command-runner.jar", "Args": args}}


def thrift_step() -> dict:
    """Start the Spark Thrift server on the primary node for the data team's dbt (target `emr`)."""
    return _command_runner("spark thrift server", [
        "sudo", "/usr/lib/spark/sbin/start-thriftserver.sh", "--hiveconf", f"hive.server2.thrift.port={THRIFT_PORT}",
    ], on_failure="CONTINUE")


def stage_steps(run_id: str) -> list[dict]:
    """AddJobFlowSteps: every stage of `orchestration.stages`, in order, as its own step with this run's id."""
    check_run_id(run_id)
    steps = []
    for stage in STAGES:
        if stage.spark_driver:
            args = ["spark-submit", "--deploy-mode", "cluster", "--master", "yarn",
                    f"{SITE_PACKAGES}/python_jobs/stage_job.py", stage.name, "--run-id", run_id]
        else:
            args = ["encore-recs", "step", stage.name, "--run-id", run_id]
        steps.append(_command_runner(f"{stage.name} {run_id}", args))
    return steps
