"""`encore-recs deploy` against the real local S3 server: what EMR's bootstrap and MWAA read lands where they read it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from orchestration.deploy import DAG_FILES
from orchestration.emr import EmrSettings

ARTIFACTS, MWAA = "acme-artifacts", "acme-mwaa"


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "python_jobs.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def deployed(stack, s3, tmp_path_factory):
    for bucket in (ARTIFACTS, MWAA):
        s3.create_bucket(Bucket=bucket)
    done = _cli("deploy", "--artifact-bucket", ARTIFACTS, "--log-bucket", "acme-logs", "--dags-bucket", MWAA)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _get(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_deploy_uploads_the_wheel_project_and_bootstrap_where_the_cluster_reads_them(deployed, s3, tmp_path):
    settings = EmrSettings(artifact_bucket=ARTIFACTS, log_bucket="acme-logs")
    for key in (settings.wheel_key, settings.project_key, settings.constraints_key, settings.bootstrap_key,
                settings.thrift_auth_key):
        assert f"s3://{ARTIFACTS}/{key}" in deployed
    wheel = zipfile.ZipFile(io.BytesIO(_get(s3, ARTIFACTS, settings.wheel_key)))
    metadata = next(n for n in wheel.namelist() if n.endswith("METADATA"))
    requires = [line for line in wheel.read(metadata).decode().splitlines() if line.startswith("Requires-Dist:")]
    unconditional = [line.split(":", 1)[1].strip() for line in requires if "extra ==" not in line]
    assert not [r for r in unconditional if r.startswith(("pyspark", "pytest", "apache-airflow"))], unconditional
    assert "python_jobs/stage_job.py" in wheel.namelist()  # what the EMR spark-submit steps run
    # every module the stage jobs import is in it: a package left out of pyproject's list fails on the cluster only
    root = Path(__file__).resolve().parent.parent
    sources = {str(path.relative_to(root)) for path in (root / "python_jobs").rglob("*.py")}
    assert sorted(sources - set(wheel.namelist())) == []

    project = tarfile.open(fileobj=io.BytesIO(_get(s3, ARTIFACTS, settings.project_key)))
    names = project.getnames()
    assert {"dbt_project.yml", "profiles.yml", "macros/register_landed.sql"} <= set(names)
    assert any(n.startswith("expectations/") for n in names) and not any("uncommitted" in n for n in names)

    # the bootstrap installs the wheel with requirements.lock as constraints: pip's real resolver says no pyspark
    wheel_path = tmp_path / settings.wheel_key.rsplit("/", 1)[1]
    wheel_path.write_bytes(_get(s3, ARTIFACTS, settings.wheel_key))
    (tmp_path / "constraints.txt").write_bytes(_get(s3, ARTIFACTS, settings.constraints_key))
    report = tmp_path / "report.json"
    resolved = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed",
                               "--report", str(report), "-c", str(tmp_path / "constraints.txt"), str(wheel_path)],
                              capture_output=True, text=True, timeout=300)
    assert resolved.returncode == 0, resolved.stderr[-2000:]
    installs = {i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"] for i in json.loads(report.read_text())["install"]}
    assert "pyspark" not in installs and "py4j" not in installs and "pytest" not in installs
    assert installs["dbt-core"] == "1.11.16" and installs["great-expectations"] == "1.24.1"


def test_the_uploaded_dag_folder_imports_on_its_own(deployed, s3, tmp_path):
    """MWAA has only what deploy put in the DAG folder: the DAG parses from there, importing nothing else of ours."""
    for name in DAG_FILES:
        key = "dags/" + name.removeprefix("orchestration/dags/")
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_bytes(_get(s3, MWAA, key))
    assert b"--constraint" in _get(s3, MWAA, "requirements.txt")
    dags = tmp_path / "dags"
    probe = (
        "import runpy, sys; sys.path.insert(0, sys.argv[1]); "
        "runpy.run_path(sys.argv[1] + '/encore_recs.py'); "
        "ours = sorted(m.__file__ for n, m in sys.modules.items() if n.split('.')[0] in ('orchestration', 'python_jobs')); "
        "print('\\n'.join(ours))"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(dags)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow")})
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = done.stdout.split()
    assert loaded and all(path.startswith(str(dags)) for path in loaded), loaded


def test_deploy_to_a_missing_bucket_is_one_line(stack):
    done = _cli("deploy", "--artifact-bucket", "no-such-artifacts", "--log-bucket", "acme-logs", "--dags-bucket", MWAA)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "no-such-artifacts" in done.stderr, done.stderr
