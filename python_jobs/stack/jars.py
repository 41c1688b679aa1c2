"""JVM artifacts beyond PySpark's own, fetched from Maven Central with `mvn` once and cached under `.jars/`.

- the S3A connector and its AWS SDK, pinned to the Hadoop that the pinned
  PySpark bundles (hadoop-client 3.3.4 in PySpark 3.5.x);
- the PostgreSQL JDBC driver, for the Hive metastore database;
- Apache Iceberg's Spark runtime, the line EMR 7.13 ships (1.10.0 for Spark 3.5 / Scala 2.12): the marts and
  the run's tables are Iceberg tables in the same metastore;
- the Hive standalone metastore distribution, only for its Postgres schema
  scripts (python_jobs.stack.metastore loads them).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from python_jobs.config import PROJECT_DIR
from python_jobs.errors import UserError

JARS = (
    ("org.apache.hadoop", "hadoop-aws", "3.3.4"),
    ("com.amazonaws", "aws-java-sdk-bundle", "1.12.262"),
    ("org.postgresql", "postgresql", "42.7.4"),
    ("org.apache.iceberg", "iceberg-spark-runtime-3.5_2.12", "1.10.0"),
)
JAR_DIR = PROJECT_DIR / ".jars"


def spark_home() -> Path:
    """The PySpark wheel's Spark: its `bin/` starts the local cluster, its `jars/` hold what PySpark ships."""
    import pyspark

    return Path(pyspark.__file__).parent


def jar_paths() -> list[Path]:
    return [JAR_DIR / f"{artifact}-{version}.jar" for _, artifact, version in JARS]


def jdbc_driver() -> Path:
    return next(path for path in ensure_jars() if path.name.startswith("postgresql-"))


def fetch(coordinates: str, expected: Path) -> Path:
    """`mvn dependency:copy` of group:artifact:version[:type[:classifier]] into .jars/, unless already there."""
    if expected.exists():
        return expected
    if shutil.which("mvn") is None:
        raise UserError(f"Maven (mvn) is needed once to fetch {coordinates}; install it or copy {expected.name} into .jars/")
    JAR_DIR.mkdir(exist_ok=True)
    result = subprocess.run(
        ["mvn", "-q", "-B", "dependency:copy", f"-Dartifact={coordinates}",
         f"-DoutputDirectory={JAR_DIR}", "-Dmdep.useBaseVersion=true"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0 or not expected.exists():
        raise UserError(f"could not fetch {coordinates} from Maven Central; check the network and retry `make setup`")
    return expected


def ensure_jars() -> list[Path]:
    """Return the jar paths, fetching any that are missing."""
    return [fetch(f"{g}:{a}:{v}", path) for (g, a, v), path in zip(JARS, jar_paths())]


if __name__ == "__main__":
    for path in ensure_jars():
        print(path)
