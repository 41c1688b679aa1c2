"""`encore-recs deploy`: build the wheel and put what EMR and MWAA read where they read it.

Artifact bucket (EMR's bootstrap action reads it, keys from `orchestration.emr.EmrSettings`):
  wheel, dbt project (+ Great Expectations project) as a tarball, requirements.lock as pip constraints, bootstrap script.
MWAA bucket: the DAG file and the few standard-library modules it imports under `dags/`, and
`requirements.txt` (only the Airflow constraint line and the Amazon provider).
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from orchestration.emr import EmrSettings
from python_jobs.errors import UserError
from python_jobs.stack.thrift_auth import provider_jar

ROOT = Path(__file__).resolve().parent.parent
# what MWAA imports: the DAG and the modules it reads at parse time and in its EMR tasks (standard library only)
DAG_FILES = ("orchestration/dags/encore_recs.py", "orchestration/__init__.py", "orchestration/stages.py",
             "orchestration/emr.py", "orchestration/airflow_dag.py",
             "python_jobs/__init__.py", "python_jobs/errors.py", "python_jobs/runs/__init__.py", "python_jobs/runs/run_ids.py", "python_jobs/config.py")
# the dbt project and the Great Expectations project, unpacked on every EMR node (ENCORE_PROJECT_DIR)
PROJECT_PATHS = ("dbt_project.yml", "profiles.yml", "models", "macros", "seeds", "tests/dbt", "expectations")
BOOTSTRAP = ROOT / "orchestration" / "aws" / "bootstrap" / "install_wheel.sh"
MWAA_REQUIREMENTS = ROOT / "orchestration" / "aws" / "mwaa" / "requirements.txt"


@dataclass(frozen=True)
class Upload:
    bucket: str
    key: str
    body: bytes

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def build_wheel(out_dir: Path) -> Path:
    """The project's wheel, built by pip in an isolated build environment (setuptools from the package index)."""
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out_dir), str(ROOT)], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    wheels = sorted(out_dir.glob("encore_recs-*.whl"))
    if done.returncode != 0 or not wheels:
        raise UserError(f"building the wheel failed: {done.stderr.strip().splitlines()[-1:] or done.returncode}")
    return wheels[-1]


def project_tarball() -> bytes:
    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        parts = Path(info.name).parts
        return None if "uncommitted" in parts or "__pycache__" in parts else info

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in PROJECT_PATHS:
            tar.add(ROOT / path, arcname=path, filter=keep)
    return buffer.getvalue()


def plan_uploads(settings: EmrSettings, dags_bucket: str, dags_prefix: str, wheel: Path) -> list[Upload]:
    artifacts = settings.artifact_bucket
    wheel_key = f"{settings.wheel_key.rsplit('/', 1)[0]}/{wheel.name}"
    if wheel_key != settings.wheel_key:
        raise UserError(f"the wheel is {wheel.name}, but the cluster installs {settings.wheel_key}; "
                        "update EmrSettings.wheel_key with the version")
    prefix = dags_prefix.strip("/")
    return [
        Upload(artifacts, settings.wheel_key, wheel.read_bytes()),
        Upload(artifacts, settings.project_key, project_tarball()),
        Upload(artifacts, settings.constraints_key, (ROOT / "requirements.lock").read_bytes()),
        Upload(artifacts, settings.bootstrap_key, BOOTSTRAP.read_bytes()),
        Upload(artifacts, settings.thrift_auth_key, provider_jar().read_bytes()),
        *[Upload(dags_bucket, f"{prefix}/{name.removeprefix('orchestration/dags/')}", (ROOT / name).read_bytes())
          for name in DAG_FILES],
        Upload(dags_bucket, "requirements.txt", MWAA_REQUIREMENTS.read_bytes()),
    ]


def deploy(client, settings: EmrSettings, dags_bucket: str, dags_prefix: str = "dags") -> list[Upload]:
    """Build and upload; returns what was uploaded. `client` is a boto3 S3 client for the target account."""
    with tempfile.TemporaryDirectory(prefix="encore-wheel-") as tmp:
        uploads = plan_uploads(settings, dags_bucket, dags_prefix, build_wheel(Path(tmp)))
    for bucket in sorted({u.bucket for u in uploads}):
        try:
            client.head_bucket(Bucket=bucket)
        except Exception as exc:  # botocore's ClientError or an unreachable endpoint: one line either way
            raise UserError(f"bucket {bucket} cannot be reached ({exc}); create it or fix the credentials") from None
    for upload in uploads:
        client.put_object(Bucket=upload.bucket, Key=upload.key, Body=upload.body)
    return uploads
