"""No credentials in the repository; IAM policies are least-privilege."""

import json
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).parent.parent
SECRET_PATTERNS = [
    re.compile(r"AKIA[0-9A-Z]{16}"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"(?i)aws_secret_access_key\s*[:=]\s*['\"]?[A-Za-z0-9/+]{30,}"),
    re.compile(r"(?i)password\s*[:=]\s*['\"][^'\"{}$]{4,}['\"]"),
    re.compile(r"X-Amz-Signature=[0-9a-f]{64}"),
]


def _tracked() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / line for line in out.splitlines() if line and (ROOT / line).is_file()]


def test_no_credential_looking_strings_are_committed():
    hits = []
    for path in _tracked():
        if path.suffix in {".jar", ".parquet", ".png"} or path == Path(__file__):
            continue
        text = path.read_text(errors="ignore")
        hits += [f"{path.relative_to(ROOT)}: {p.pattern}" for p in SECRET_PATTERNS if p.search(text)]
    assert not hits, hits


def test_profiles_take_credentials_from_the_environment():
    text = (ROOT / "profiles.yml").read_text()
    for line in text.splitlines():
        if re.match(r"\s*(password|user|host)\s*:", line) and line.split(":", 1)[1].strip() != "NA":
            assert "env_var(" in line, line


def test_iam_policies_name_only_actions_and_prefixes_they_use():
    policies = sorted((ROOT / "orchestration" / "aws" / "iam").glob("*.json"))
    assert {p.stem for p in policies} == {"extract-job", "emr-jobs", "publish-step", "serve-api", "mwaa-execution",
                                          "emr-instance-profile", "emr-service-role.trust", "emr-instance-profile.trust",
                                          "firehose-delivery", "firehose-delivery.trust"}
    for path in policies:
        doc = json.loads(path.read_text())
        for statement in doc["Statement"]:
            assert statement["Effect"] == "Allow"
            if "Principal" in statement:  # a trust policy: one AWS service may assume the role
                assert statement["Action"] == "sts:AssumeRole" and list(statement["Principal"]) == ["Service"]
                continue
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            assert all("*" not in action for action in actions), (path.name, actions)
            # "*" only where the action has no resource type, and then only under a tag condition
            assert all(resource != "*" or "Condition" in statement for resource in resources), (path.name, resources)
            assert not any(resource.endswith(":::*") for resource in resources), (path.name, resources)
            for resource in resources:
                if resource.startswith("arn:aws:s3:::") and "/" not in resource and "s3:ListBucket" in actions:
                    assert "Condition" in statement, f"{path.name}: bucket-wide listing without a prefix condition"


def test_the_serving_api_can_only_read_published_runs_and_its_keys_and_send_events():
    doc = json.loads((ROOT / "orchestration" / "aws" / "iam" / "serve-api.json").read_text())
    granted = {(a, r) for st in doc["Statement"]
               for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
               for r in ([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"])}
    assert {a for a, _ in granted} == {"s3:GetObject", "firehose:PutRecordBatch", "secretsmanager:GetSecretValue"}
    # the API key store only (ENCORE_API_KEYS_SECRET_ID=encore/api-keys; Secrets Manager adds 6 characters)
    assert {r for a, r in granted if a.startswith("secretsmanager:")} == {
        "arn:aws:secretsmanager:*:*:secret:encore/api-keys-*"}
    assert all(r.startswith("arn:aws:s3:::encore-publish/") for a, r in granted if a == "s3:GetObject")
    assert {r for a, r in granted if a.startswith("firehose:")} == {"arn:aws:firehose:*:*:deliverystream/encore-events"}


def test_the_emr_nodes_read_only_the_database_and_thrift_secrets():
    doc = json.loads((ROOT / "orchestration" / "aws" / "iam" / "emr-instance-profile.json").read_text())
    secrets = {r for st in doc["Statement"] if "secretsmanager" in str(st["Action"])
               for r in ([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"])}
    # ENCORE_PG_SECRET_ID=encore/db and ENCORE_SPARK_THRIFT_SECRET_ID=encore/spark-thrift; not the API's keys
    assert secrets == {"arn:aws:secretsmanager:*:*:secret:encore/db-*",
                       "arn:aws:secretsmanager:*:*:secret:encore/spark-thrift-*"}


def test_the_emr_nodes_may_touch_every_object_and_schema_the_stages_on_them_use():
    """Every key a stage, the history or maintenance reads or writes on EMR, taken from the code's own constants,
    is granted by the instance profile with the action it needs; every schema a run creates is in Glue's grant."""
    from fnmatch import fnmatch

    from python_jobs.events.landing import CHECKPOINT, PREFIX as EVENTS
    from python_jobs.history.morning_report import INDEX_KEY
    from python_jobs.history.run_history import PREFIX as HISTORY
    from python_jobs.ingest.extract import LEDGER, landing_prefix
    from python_jobs.models import tuning_record, warm_start
    from python_jobs.publish.publish import LATEST_KEY, run_prefix
    from python_jobs.runs.run_state import state_key

    doc = json.loads((ROOT / "orchestration" / "aws" / "iam" / "emr-instance-profile.json").read_text())
    granted = [(a, r) for st in doc["Statement"] if st["Effect"] == "Allow"
               for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
               for r in ([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"])]

    def allowed(action: str, resource: str) -> bool:
        return any(fnmatch(action, a) and fnmatch(resource, r) for a, r in granted)

    lake, publish = "arn:aws:s3:::encore-lake/", "arn:aws:s3:::encore-publish/"
    read_write = [lake + landing_prefix("r1", "stg_raw__bids") + "part-00000.parquet",
                  lake + LEDGER.format(model="stg_raw__bids"),
                  lake + "warehouse/marts.db/dim_listings/data/x.parquet", lake + state_key("r1"),
                  lake + CHECKPOINT + "offsets/0", lake + tuning_record.KEY, lake + tuning_record.BLEND_KEY,
                  lake + warm_start.KEY.format(part="final", name="mult_vae"), lake + HISTORY + "runs/r1.json",
                  publish + run_prefix("r1") + "manifest.json", publish + LATEST_KEY, publish + INDEX_KEY]
    for resource in read_write:
        assert allowed("s3:GetObject", resource) and allowed("s3:PutObject", resource), resource
    # the ledger of the lake's staged bids: read by the extract, written by the marts stage, cleared when stale
    assert allowed("s3:DeleteObject", lake + LEDGER.format(model="stg_raw__bids"))
    assert allowed("s3:GetObject", lake + EVENTS + "year=2026/month=12/day=07/hour=09/x.gz")
    assert not allowed("s3:PutObject", lake + EVENTS + "x.gz")  # the app's events are Firehose's to write
    for schema in ("staging", "marts", "recs", "events", "run_history"):
        assert allowed("glue:CreateTable", f"arn:aws:glue:*:*:database/{schema}"), schema
        assert allowed("glue:UpdateTable", f"arn:aws:glue:*:*:table/{schema}/t"), schema


def test_an_unprivileged_user_cannot_read_the_state_folder(stack, s3):
    """Credentials, landed emails, published JSON and presigned URLs live under the state folder (issue 21)."""
    import os
    import shutil

    import pytest

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root to act as another user")
    s3.put_object(Bucket=stack.lake_bucket, Key="private-check.txt", Body=b"secret")
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    targets = [stack.state_dir, stack.state_dir / "s3" / "credentials.json",
               stack.state_dir / "s3" / "data" / stack.lake_bucket / "private-check.txt"]
    for target in targets:
        command = ["ls", str(target)] if target.is_dir() else ["cat", str(target)]
        result = subprocess.run(as_nobody + command, capture_output=True, text=True)
        assert result.returncode != 0 and "Permission denied" in result.stderr, (target, result.stdout)
    assert stack.state_dir.stat().st_mode & 0o077 == 0o011  # others may only pass through, to reach Postgres


def test_the_embedded_postgres_refuses_a_connection_without_the_password(stack):
    import os
    import sys

    from python_jobs.stack.postgres import pg_password

    probe = ("import psycopg2, sys\n"
             "try:\n"
             f"    psycopg2.connect(host='127.0.0.1', port={stack.pg_port}, user='postgres', dbname='encore',"
             " connect_timeout=5).close()\n"
             "except psycopg2.OperationalError as exc:\n"
             "    sys.exit(str(exc).strip().splitlines()[0])\n")
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    refused = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert refused.returncode != 0 and ("password" in refused.stderr), refused.stderr
    allowed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                             env={**env, "PGPASSWORD": pg_password(stack)})
    assert allowed.returncode == 0, allowed.stderr
    assert (stack.state_dir / "postgres-password").stat().st_mode & 0o777 == 0o600


def test_the_postgres_server_runs_in_its_own_group_not_roots(stack):
    import os

    import psycopg2
    import pytest

    from python_jobs.stack.postgres import pg_dsn

    if os.geteuid() != 0:
        pytest.skip("the server runs as its own user only when started by root")
    with psycopg2.connect(pg_dsn(stack)) as conn, conn.cursor() as cur:
        cur.execute("select pg_backend_pid()")
        pid = cur.fetchone()[0]
    status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status").read().splitlines() if ":" in line)
    gids = set(status["Groups"].split()) | {status["Gid"].split()[0]}
    assert "0" not in gids, status["Gid"] + " / " + status["Groups"]
