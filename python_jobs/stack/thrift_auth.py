"""The local Thrift server's door: Hive's CUSTOM authentication with a provider of our own and a password.

dbt's `spark_cluster` target (PyHive, SASL PLAIN) passes ENCORE_SPARK_THRIFT_USER and ENCORE_SPARK_THRIFT_PASSWORD;
the server checks them with ThriftPasswordAuthenticator.java (beside this file), which reads the same two variables
from the server's environment. The password is generated once into the state folder (0600), so it is never on a
command line. The class is compiled once with the JDK's javac against the Hive service classes PySpark ships, into
`.jars/` under a name that changes with the source (`make setup`, or the first `up --cluster`).
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from python_jobs.config import Settings
from python_jobs.db_secret import thrift_credentials_from_secret
from python_jobs.errors import UserError
from python_jobs.stack.jars import JAR_DIR, spark_home
from python_jobs.stack.state_folder import secret

THRIFT_USER = "encore"
SOURCE = Path(__file__).with_name("ThriftPasswordAuthenticator.java")
PROVIDER_CLASS = "encore.ThriftPasswordAuthenticator"


def thrift_env(settings: Settings) -> dict[str, str]:
    """The credentials the Thrift server checks and dbt's `spark_cluster` / `emr` targets pass: from Secrets Manager
    where ENCORE_SPARK_THRIFT_SECRET_ID names a secret (EMR), else generated once into the state folder."""
    if settings.thrift_secret_id:
        user, password = thrift_credentials_from_secret(settings.thrift_secret_id, settings.region)
        return {"ENCORE_SPARK_THRIFT_USER": user, "ENCORE_SPARK_THRIFT_PASSWORD": password}
    return {"ENCORE_SPARK_THRIFT_USER": THRIFT_USER,
            "ENCORE_SPARK_THRIFT_PASSWORD": secret(settings.state_dir, "spark-thrift-password")}


def emr_exports() -> str:
    """Shell export lines of the credentials (for the EMR Thrift step, which evaluates them before starting the
    server, so the password reaches its environment and no command line)."""
    env = thrift_env(Settings.from_env())
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in env.items())


def hiveconf() -> list[str]:
    """The Thrift server's arguments that turn the check on (no secret among them)."""
    return ["--hiveconf", "hive.server2.authentication=CUSTOM",
            "--hiveconf", f"hive.server2.custom.authentication.class={PROVIDER_CLASS}"]


def provider_jar() -> Path:
    """The compiled provider, built when missing or when its source changed."""
    jar = JAR_DIR / f"encore-thrift-auth-{hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]}.jar"
    if jar.exists():
        return jar
    if shutil.which("javac") is None:
        raise UserError("a JDK (javac, 17) is needed once to build the Thrift server's password check; install it "
                        "and retry `make setup`")
    service = sorted((spark_home() / "jars").glob("spark-hive-thriftserver_*.jar"))
    if not service:
        raise UserError(f"PySpark at {spark_home()} lacks the Thrift server's jar; reinstall it with `make setup`")
    JAR_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as classes:
        result = subprocess.run(["javac", "--release", "8", "-nowarn", "-cp", str(service[0]), "-d", classes,
                                 str(SOURCE)], capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            first = (result.stderr.strip().splitlines() or ["no output"])[0]
            raise UserError(f"could not compile {SOURCE.name} ({first}); check the JDK and retry `make setup`")
        partial = jar.with_name(jar.name + ".partial")
        with zipfile.ZipFile(partial, "w") as out:
            for path in sorted(Path(classes).rglob("*.class")):
                out.write(path, path.relative_to(classes).as_posix())
        partial.replace(jar)
    return jar


if __name__ == "__main__":  # `make setup`; `--exports` on EMR's primary node (orchestration.emr.thrift_step)
    import sys

    try:
        print(emr_exports() if sys.argv[1:] == ["--exports"] else provider_jar())
    except UserError as exc:
        sys.exit(f"encore-recs: error: {exc}")
