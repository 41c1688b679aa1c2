"""The SparkSession every Spark step shares, configured for the S3 lake.

Tables live on S3 (`s3a://<lake>/warehouse`); the catalog is a Hive
metastore database in PostgreSQL (python_jobs.stack.metastore), shared by every
process: stage jobs, spark-submit, the Thrift server, dbt. The same settings
are written to `spark-defaults.conf` under the state folder so that a bare
`dbt --target spark`, `spark-submit` and the Thrift server pick them up
through SPARK_CONF_DIR.

Tables are Apache Iceberg (1.10, EMR 7.13's line): Spark's own `spark_catalog`
is Iceberg's `SparkSessionCatalog`, which keeps Iceberg tables in the same
catalog (`type=hive` over our metastore here, `type=glue` on EMR) and hands
every other table (the landed Parquet of `staging.*`) to Spark's Hive catalog.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from python_jobs.config import Settings
from python_jobs.stack.jars import ensure_jars, jdbc_driver
from python_jobs.stack import metastore_locks
from python_jobs.stack.metastore import check_schema, connection_params, jdbc_url, managed_by_cluster
from python_jobs.stack.state_folder import secret

# read from spark-defaults.conf, never handed to the JVM's launch: PySpark puts every option of the first session's
# builder on spark-submit's command line, which `ps` shows every local user
SECRET_KEYS = ("spark.authenticate.secret", "spark.hadoop.javax.jdo.option.ConnectionPassword")


def _shared_conf(settings: Settings) -> dict[str, str]:
    """What every Spark application of the pipeline sets, wherever it runs."""
    return {
        "spark.app.name": "encore-recs",
        "spark.sql.warehouse.dir": f"s3a://{settings.lake_bucket}/warehouse",
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
    }


def iceberg_conf(catalog_type: str) -> dict[str, str]:
    """Iceberg in `spark_catalog` over the given catalog (`hive` locally, `glue` on EMR): one name for every table,
    so dbt's `marts.x`, the stage jobs and the Thrift server see the same tables wherever they run."""
    return {
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        "spark.sql.catalog.spark_catalog": "org.apache.iceberg.spark.SparkSessionCatalog",
        "spark.sql.catalog.spark_catalog.type": catalog_type,
    }


def spark_secret(settings: Settings) -> str:
    """Spark's shared secret of the local cluster and sessions: generated once into the state folder (0600)."""
    return secret(settings.state_dir, "spark-secret")


def spark_conf(settings: Settings) -> dict[str, str]:
    if managed_by_cluster(settings):
        return {**_shared_conf(settings), "spark.master": "yarn", "spark.sql.catalogImplementation": "hive",
                **iceberg_conf("glue")}
    meta = connection_params(settings)
    jars, jdbc = ensure_jars(), jdbc_driver()
    conf = {
        **_shared_conf(settings),
        "spark.master": settings.spark_master,
        # on the class path of every JVM (driver, executors, Thrift server), not in spark.jars: the Hive client
        # and the Thrift server load S3A and the JDBC driver from the system class loader
        "spark.driver.extraClassPath": ":".join(str(p) for p in jars),
        "spark.executor.extraClassPath": ":".join(str(p) for p in jars if p != jdbc),
        "spark.sql.catalogImplementation": "hive",
        **iceberg_conf("hive"),
        # the shared catalog: a Hive 2.3 metastore in PostgreSQL, schema loaded by python_jobs.stack.metastore
        "spark.hadoop.javax.jdo.option.ConnectionURL": jdbc_url(settings),
        "spark.hadoop.javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
        "spark.hadoop.javax.jdo.option.ConnectionUserName": meta["user"],
        "spark.hadoop.javax.jdo.option.ConnectionPassword": meta["password"],
        "spark.hadoop.hive.metastore.schema.verification": "true",
        "spark.hadoop.datanucleus.schema.autoCreateAll": "false",
        # with PostgreSQL gone, a metastore call fails in under a minute: HikariCP waits 5 s for a connection and
        # gives up (Hive's default pool, BoneCP, waits for ever, retrying in the background), Hive tries the call
        # twice instead of ten times, and Spark's client three times
        "spark.hadoop.datanucleus.connectionPoolingType": "HikariCP",
        "spark.hadoop.datanucleus.connectionPool.connectionWaitTimeout": "5000",
        # and holds few connections: HikariCP keeps its whole pool open (ten, in each of DataNucleus' two pools),
        # so a session, the Thrift server and a stage job on the cluster used up PostgreSQL's 50
        "spark.hadoop.datanucleus.connectionPool.maxPoolSize": "4",
        "spark.hadoop.datanucleus.connectionPool.minIdle": "0",
        "spark.hadoop.hive.hmshandler.retry.attempts": "2",
        "spark.hadoop.hive.hmshandler.retry.interval": "1000ms",
        # an Iceberg commit's metastore lock heartbeats often, so one left by a killed process is told apart
        # within a minute and expired (python_jobs.stack.metastore_locks)
        "spark.hadoop.iceberg.hive.lock-heartbeat-interval-ms": str(metastore_locks.HEARTBEAT_MS),
        "spark.hadoop.hive.txn.timeout": f"{metastore_locks.STALE_AFTER_S}s",
        "spark.driver.extraJavaOptions": (
            f"-Xss16m -Dlog4j2.configurationFile={Path(__file__).with_name('log4j2.properties')}"
        ),
        # every port on loopback: the driver's RPC and block manager here, the executors' through the worker's
        # host, the master's and worker's web UIs through SPARK_LOCAL_IP (python_jobs.stack.cluster)
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "false",
        # the master's UI, which cannot be turned off, shows applications but cannot kill them
        "spark.ui.killEnabled": "false",
        # only a process that holds the state folder's secret talks to the master, the worker, a driver or an
        # executor; standalone mode takes it from this file (the executors get it from their worker)
        "spark.authenticate": "true",
        "spark.authenticate.secret": spark_secret(settings),
        "spark.ui.showConsoleProgress": "false",
        # pandas <-> Spark through Arrow: the in-process models hand their data and lists over this way
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.driver.memory": settings.driver_memory,
        # train reads the marts into this process (models.engine chose it because they fit the driver): Spark's
        # 1 GiB default cap on collected results stopped the 1M-user run reading its 25 million event rows; half
        # the heap leaves room for the rows as Arrow turns them into frames
        "spark.driver.maxResultSize": _half(settings.driver_memory),
        "spark.hadoop.fs.s3a.fast.upload": "true",
        "spark.hadoop.fs.s3a.committer.magic.enabled": "false",
        # keep directory markers: deleting them after every commit is slow (and logs failures) on a posix-backed store
        "spark.hadoop.fs.s3a.directory.marker.retention": "keep",
    }
    if settings.s3_endpoint:
        conf.update(
            {
                "spark.hadoop.fs.s3a.endpoint": settings.s3_endpoint,
                "spark.hadoop.fs.s3a.path.style.access": "true",
                "spark.hadoop.fs.s3a.connection.ssl.enabled": str(settings.s3_endpoint.startswith("https")).lower(),
                "spark.hadoop.fs.s3a.endpoint.region": settings.region,
                "spark.hadoop.fs.s3a.aws.credentials.provider": "com.amazonaws.auth.EnvironmentVariableCredentialsProvider",
                # a store that went away fails the stage within about a minute: S3A's defaults retry a refused
                # connection for about 11 minutes per operation (20 SDK attempts under 7 S3A retries)
                "spark.hadoop.fs.s3a.attempts.maximum": "2",
                "spark.hadoop.fs.s3a.retry.limit": "3",
                "spark.hadoop.fs.s3a.retry.interval": "500ms",
                "spark.hadoop.fs.s3a.retry.throttle.limit": "3",
                "spark.hadoop.fs.s3a.connection.establish.timeout": "5000",
                "spark.hadoop.fs.s3a.connection.timeout": "60000",
            }
        )
    return conf


def _half(memory: str) -> str:
    """Half of a JVM memory size ('4g', '4096', '512m'; no suffix is MiB as spark.driver.memory reads it), in
    MiB: spark.driver.maxResultSize reads a bare number as bytes, and a cap below the heap fails a collect too
    large with one clear error instead of the driver running out of memory."""
    units = {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}
    number, unit = (memory[:-1], memory[-1].lower()) if memory[-1].isalpha() else (memory, "m")
    return f"{max(1, int(float(number) * units[unit] / 2))}m"


def write_spark_defaults(settings: Settings, conf: dict[str, str] | None = None) -> Path:
    conf_dir = settings.state_dir / "spark-conf"
    conf_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"{key} {value}" for key, value in (conf or spark_conf(settings)).items()]
    path = conf_dir / "spark-defaults.conf"
    path.touch(mode=0o600)
    path.write_text("\n".join(lines) + "\n")
    return conf_dir


def get_spark(settings: Settings, catalog: bool = True):
    """Create (or return) the process's SparkSession; `catalog=False` needs no metastore."""
    from pyspark.sql import SparkSession

    if catalog and not managed_by_cluster(settings):
        check_schema(settings)
    conf = spark_conf(settings)
    os.environ["SPARK_CONF_DIR"] = str(write_spark_defaults(settings, conf))
    # Python workers run this interpreter (the venv's, with pandas and pyarrow), not whatever python3 is first
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if not catalog:
        conf["spark.sql.catalogImplementation"] = "in-memory"
    from pyspark import SparkContext

    launching = SparkContext._gateway is None
    builder = SparkSession.builder
    for key, value in conf.items():
        if not (launching and key in SECRET_KEYS):
            builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    # ALS truncates its lineage here every 10 iterations (deep lineage overflows the stack otherwise)
    spark.sparkContext.setCheckpointDir(os.environ.get("ENCORE_CHECKPOINT_DIR") or str(settings.state_dir / "checkpoints"))
    return spark


def ship_package(spark) -> None:
    """The driver's own python_jobs on every Python worker's path, once per SparkContext: a Python function run
    by Spark's tasks (`mapInPandas`) imports the code the driver runs, not whichever copy the executors' Python
    would find (a developer's worktree is not the installed one; EMR's nodes have the wheel)."""
    import tempfile
    import zipfile

    import python_jobs

    context = spark.sparkContext
    if getattr(context, "_encore_package_shipped", False):
        return
    root = Path(python_jobs.__file__).parent
    folder = Path(tempfile.mkdtemp(prefix="encore-py-"))
    archive = folder / "python_jobs.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for path in sorted(root.rglob("*.py")):
            out.write(path, str(path.relative_to(root.parent)))
    context.addPyFile(str(archive))
    context._encore_package_shipped = True
