"""The EMR requests, as plain data built from the one stage list: a transient cluster per daily run, one step per stage.

No AWS call here: a DAG task (or a test) hands these dicts to boto3 / the Amazon provider's operators.
The Thrift server (port 10001, 10000 is Hive's) is a step of its own so the data team's dbt can reach
the day's cluster; the Glue Data Catalog is the metastore shared by the steps and the Thrift server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from orchestration.stages import STAGES
from python_jobs.config import check_bucket
from python_jobs.errors import UserError
from python_jobs.runs.run_ids import check_run_id
from python_jobs.stack.spark import iceberg_conf

RELEASE_LABEL = "emr-7.13.0"  # Spark 3.5.6, the line the project pins
GLUE_CLIENT_FACTORY = "com.amazonaws.glue.catalog.metastore.AWSGlueDataCatalogHiveClientFactory"
THRIFT_PORT = 10001
# what the steps are told (passed on when the scheduler has them); credentials come from the instance profile
STEP_VARIABLES = ("ENCORE_LAKE_BUCKET", "ENCORE_PUBLISH_BUCKET", "ENCORE_PG_SECRET_ID", "ENCORE_SPARK_THRIFT_SECRET_ID",
                  "AWS_REGION", "ENCORE_TOP_N",
                  "ENCORE_SEED", "ENCORE_TUNING_GRID", "ENCORE_URL_EXPIRY_SECONDS", "ENCORE_KEEP_RUNS", "ENCORE_SHUFFLE_PARTITIONS")
# every step's environment on EMR: AWS S3 through the instance profile, YARN, dbt in the step's own SparkSession,
# the dbt project unpacked by the bootstrap action, ALS checkpoints on the cluster's HDFS
STEP_DEFAULTS = {"ENCORE_S3_ENDPOINT": "aws", "ENCORE_SPARK_MASTER": "yarn", "ENCORE_DBT_SPARK_TARGET": "spark",
                 "ENCORE_PROJECT_DIR": "/opt/encore-recs/project", "ENCORE_STATE_DIR": "/tmp/encore-recs",
                 "ENCORE_CHECKPOINT_DIR": "hdfs:///encore-recs/checkpoints", "PYSPARK_PYTHON": "/usr/bin/python3.11"}
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
    project_key: str = "encore/dist/project.tar.gz"
    constraints_key: str = "encore/dist/requirements.lock"
    thrift_auth_key: str = "encore/dist/encore-thrift-auth.jar"  # the Thrift server's password check (deploy)
    environment: dict[str, str] = field(default_factory=lambda: dict(STEP_DEFAULTS))  # the steps' ENCORE_*; no secrets

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EmrSettings:
        """Read inside a task (never at DAG parse time) from the scheduler's environment; one line per missing name."""
        missing = [name for name in ("ENCORE_EMR_ARTIFACT_BUCKET", "ENCORE_EMR_LOG_BUCKET") if not env.get(name)]
        if missing:
            raise UserError(f"{', '.join(missing)} not set; set them in the scheduler's environment (deploy also takes "
                            "--artifact-bucket and --log-bucket): the artifacts' bucket and EMR's log bucket")
        optional = {"subnet_id": "ENCORE_EMR_SUBNET_ID", "service_role": "ENCORE_EMR_SERVICE_ROLE",
                    "instance_profile": "ENCORE_EMR_INSTANCE_PROFILE",
                    "primary_instance_type": "ENCORE_EMR_PRIMARY_INSTANCE_TYPE",
                    "core_instance_type": "ENCORE_EMR_CORE_INSTANCE_TYPE"}
        for name in ("ENCORE_EMR_ARTIFACT_BUCKET", "ENCORE_EMR_LOG_BUCKET"):
            check_bucket(name, env[name])
        values = {key: env[name] for key, name in optional.items() if env.get(name)}
        if env.get("ENCORE_EMR_CORE_INSTANCES"):
            values["core_instances"] = int(env["ENCORE_EMR_CORE_INSTANCES"])
        step_env = {**STEP_DEFAULTS, **{name: env[name] for name in STEP_VARIABLES if env.get(name)}}
        return cls(artifact_bucket=env["ENCORE_EMR_ARTIFACT_BUCKET"], log_bucket=env["ENCORE_EMR_LOG_BUCKET"],
                   environment=step_env, **values)


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
                "Args": [f"s3://{settings.artifact_bucket}/{settings.wheel_key}",
                         f"s3://{settings.artifact_bucket}/{settings.project_key}",
                         f"s3://{settings.artifact_bucket}/{settings.constraints_key}"],
            },
        }],
        "Configurations": [
            {"Classification": "spark-hive-site",
             "Properties": {"hive.metastore.client.factory.class": GLUE_CLIENT_FACTORY}},
            {"Classification": "spark-env", "Configurations": [
                {"Classification": "export", "Properties": {"PYSPARK_PYTHON": "/usr/bin/python3.11"}}]},
            # EMR's own Iceberg (1.10.0 on 7.13) on every node, in spark_catalog over Glue for the steps and the
            # Thrift server alike
            {"Classification": "iceberg-defaults", "Properties": {"iceberg.enabled": "true"}},
            {"Classification": "spark-defaults",
             "Properties": {"spark.sql.catalogImplementation": "hive", "spark.pyspark.python": "/usr/bin/python3.11",
                            **iceberg_conf("glue")}},
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


# the Thrift step's script: the password check from the artifacts, the credentials from Secrets Manager into the
# environment (never a command line: `thrift_auth --exports` prints export lines that are evaluated), then the server
THRIFT_SCRIPT = """set -euo pipefail
jar=/tmp/encore-thrift-auth.jar
aws s3 cp --only-show-errors "$1" "$jar"
export ENCORE_SPARK_THRIFT_SECRET_ID="$2" AWS_REGION="$3"
eval "$(python3.11 -m python_jobs.stack.thrift_auth --exports)"
exec sudo --preserve-env=ENCORE_SPARK_THRIFT_USER,ENCORE_SPARK_THRIFT_PASSWORD \\
  /usr/lib/spark/sbin/start-thriftserver.sh --driver-class-path "$jar" "${@:4}"
"""


def thrift_step(settings: EmrSettings) -> dict:
    """Start the Spark Thrift server on the primary node for the data team's dbt (target `emr`), asking for the user
    and password of the secret ENCORE_SPARK_THRIFT_SECRET_ID names (Hive's CUSTOM auth, our password check)."""
    from python_jobs.stack.thrift_auth import hiveconf

    secret_id = settings.environment.get("ENCORE_SPARK_THRIFT_SECRET_ID")
    if not secret_id:
        raise UserError("ENCORE_SPARK_THRIFT_SECRET_ID is not set; create a secret {\"username\", \"password\"} "
                        "(aws secretsmanager create-secret --name encore/spark-thrift ...) and set its name in the "
                        "scheduler's environment: the EMR Thrift server asks for it")
    return _command_runner("spark thrift server", [
        "bash", "-c", THRIFT_SCRIPT, "thrift-step", f"s3://{settings.artifact_bucket}/{settings.thrift_auth_key}",
        secret_id, settings.environment.get("AWS_REGION", "us-east-1"),
        "--hiveconf", f"hive.server2.thrift.port={THRIFT_PORT}", *hiveconf(),
    ], on_failure="CONTINUE")


def history_step(run_id: str, environment: Mapping[str, str] | None = None) -> dict:
    """After the stages, whatever they did: the run recorded in the history, the run_history marts rebuilt over
    the primary node's Thrift server (dbt target emr), the morning report rewritten on S3."""
    check_run_id(run_id)
    env = {**(STEP_DEFAULTS if environment is None else environment), "ENCORE_DBT_SPARK_TARGET": "emr"}
    return _command_runner(f"history {run_id}", ["env", *[f"{key}={value}" for key, value in env.items()],
                                                 "encore-recs", "history", "--run-id", run_id], on_failure="CONTINUE")


def maintain_step(run_id: str, environment: Mapping[str, str] | None = None) -> dict:
    """After the history: Iceberg upkeep of the lake's tables (`encore-recs maintain`: expire untagged snapshots,
    compact small files, weekly orphan removal), on the primary node against Glue; a failure leaves the day's run
    as it was."""
    check_run_id(run_id)
    env = dict(STEP_DEFAULTS if environment is None else environment)
    return _command_runner(f"maintain {run_id}", ["env", *[f"{key}={value}" for key, value in env.items()],
                                                  "encore-recs", "maintain"], on_failure="CONTINUE")


def stage_steps(run_id: str, environment: Mapping[str, str] | None = None) -> list[dict]:
    """AddJobFlowSteps: every stage of `orchestration.stages`, in order, as its own step with this run's id.

    A Spark stage runs in cluster mode; its driver (YARN's application master) and executors get the environment
    through spark.yarn.appMasterEnv / spark.executorEnv. The others run on the primary node under `env`.
    """
    check_run_id(run_id)
    env = dict(STEP_DEFAULTS if environment is None else environment)
    steps = []
    for stage in STAGES:
        if stage.spark_driver:
            confs = [arg for key, value in env.items()
                     for arg in ("--conf", f"spark.yarn.appMasterEnv.{key}={value}",
                                 "--conf", f"spark.executorEnv.{key}={value}")]
            args = ["spark-submit", "--deploy-mode", "cluster", "--master", "yarn", *confs,
                    f"{SITE_PACKAGES}/python_jobs/stage_job.py", stage.name, "--run-id", run_id]
        else:
            args = ["env", *[f"{key}={value}" for key, value in env.items()],
                    "encore-recs", "step", stage.name, "--run-id", run_id]
        steps.append(_command_runner(f"{stage.name} {run_id}", args))
    return steps
