"""The SparkSession every Spark step shares, configured for the S3 lake.

Tables live on S3 (`s3a://<lake>/warehouse`); the catalog is a Derby
metastore under the state folder, so one process at a time opens it: the
runner keeps a run's Spark work, dbt's included (dbt-spark `session` method),
in one process. The same settings are written to `spark-defaults.conf` under
the state folder so that a bare `dbt --target spark` picks them up through
SPARK_CONF_DIR.
"""

from __future__ import annotations

import os
from pathlib import Path

from python_jobs.config import Settings
from python_jobs.jars import ensure_jars


def spark_conf(settings: Settings) -> dict[str, str]:
    metastore = settings.state_dir / "metastore"
    conf = {
        "spark.master": settings.spark_master,
        "spark.app.name": "encore-recs",
        "spark.jars": ",".join(str(p) for p in ensure_jars()),
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": f"s3a://{settings.lake_bucket}/warehouse",
        "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={metastore / 'metastore_db'};create=true",
        "spark.driver.extraJavaOptions": (
            f"-Xss16m -Dderby.system.home={metastore} "
            f"-Dlog4j2.configurationFile={Path(__file__).with_name('log4j2.properties')}"
        ),
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": os.environ.get("ENCORE_SPARK_DRIVER_MEMORY", "4g"),
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.hadoop.fs.s3a.fast.upload": "true",
        "spark.hadoop.fs.s3a.committer.magic.enabled": "false",
    }
    if settings.s3_endpoint:
        conf.update(
            {
                "spark.hadoop.fs.s3a.endpoint": settings.s3_endpoint,
                "spark.hadoop.fs.s3a.path.style.access": "true",
                "spark.hadoop.fs.s3a.connection.ssl.enabled": str(settings.s3_endpoint.startswith("https")).lower(),
                "spark.hadoop.fs.s3a.endpoint.region": settings.region,
                "spark.hadoop.fs.s3a.aws.credentials.provider": "com.amazonaws.auth.EnvironmentVariableCredentialsProvider",
            }
        )
    return conf


def write_spark_defaults(settings: Settings, conf: dict[str, str] | None = None) -> Path:
    conf_dir = settings.state_dir / "spark-conf"
    conf_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"{key} {value}" for key, value in (conf or spark_conf(settings)).items()]
    (conf_dir / "spark-defaults.conf").write_text("\n".join(lines) + "\n")
    return conf_dir


def get_spark(settings: Settings, catalog: bool = True):
    """Create (or return) the process's SparkSession; `catalog=False` skips the Derby metastore."""
    from pyspark.sql import SparkSession

    (settings.state_dir / "metastore").mkdir(parents=True, exist_ok=True)
    conf = spark_conf(settings)
    os.environ["SPARK_CONF_DIR"] = str(write_spark_defaults(settings, conf))
    if not catalog:
        conf["spark.sql.catalogImplementation"] = "in-memory"
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    # ALS truncates its lineage here every 10 iterations (deep lineage overflows the stack otherwise)
    spark.sparkContext.setCheckpointDir(os.environ.get("ENCORE_CHECKPOINT_DIR") or str(settings.state_dir / "checkpoints"))
    return spark
