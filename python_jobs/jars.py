"""The JVM jars Spark needs beyond PySpark's own: the S3A connector and its AWS SDK.

Pinned to the Hadoop that the pinned PySpark bundles (hadoop-client 3.3.4 in
PySpark 3.5.x) and the SDK that hadoop-aws 3.3.4 was built against. Fetched
from Maven Central with `mvn` once, cached under `.jars/`.
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
)
JAR_DIR = PROJECT_DIR / ".jars"


def jar_paths() -> list[Path]:
    return [JAR_DIR / f"{artifact}-{version}.jar" for _, artifact, version in JARS]


def ensure_jars() -> list[Path]:
    """Return the jar paths, fetching any that are missing."""
    missing = [(g, a, v) for (g, a, v), path in zip(JARS, jar_paths()) if not path.exists()]
    if missing and shutil.which("mvn") is None:
        raise UserError("Maven (mvn) is needed once to fetch the S3A jars; install it or copy the jars into .jars/")
    JAR_DIR.mkdir(exist_ok=True)
    for group, artifact, version in missing:
        result = subprocess.run(
            ["mvn", "-q", "-B", "dependency:copy", f"-Dartifact={group}:{artifact}:{version}",
             f"-DoutputDirectory={JAR_DIR}", "-Dmdep.useBaseVersion=true"],
            capture_output=True, text=True, stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise UserError(f"could not fetch {group}:{artifact}:{version} from Maven Central; check the network and retry `make setup`")
    return jar_paths()


if __name__ == "__main__":
    for path in ensure_jars():
        print(path)
