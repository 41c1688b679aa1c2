"""The application database's DSN, the Spark Thrift server's credentials (and, for `serve`, the API's key store)
from AWS Secrets Manager, for jobs that run where no one may type a password.

On EMR the `stage` and `extract` steps get ENCORE_PG_SECRET_ID (a name, not a secret) and read the secret
with the instance profile's `secretsmanager:GetSecretValue`: the password never appears in step arguments,
cluster configuration or logs. The secret is RDS's JSON shape (username, password, host, port, dbname).
"""

from __future__ import annotations

import json
from urllib.parse import quote

from python_jobs.errors import UserError


def secret_string(secret_id: str, region: str, setting: str) -> str:
    """The secret's current value, read with the caller's role; one line naming `setting` when it cannot be."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return boto3.client("secretsmanager", region_name=region).get_secret_value(SecretId=secret_id)["SecretString"]
    except (BotoCoreError, ClientError) as exc:
        raise UserError(f"{setting}={secret_id!r} cannot be read ({exc}); check the name and the role's "
                        "secretsmanager:GetSecretValue") from None


def dsn_from_secret(secret_id: str, region: str) -> str:
    text = secret_string(secret_id, region, "ENCORE_PG_SECRET_ID")
    try:
        secret = json.loads(text)
        user, password, host = secret["username"], secret["password"], secret["host"]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"secret {secret_id!r} is not RDS's JSON (username, password, host, port, dbname)") from None
    port, dbname = int(secret.get("port", 5432)), secret.get("dbname", "encore")
    return f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{quote(dbname, safe='')}"


def thrift_credentials_from_secret(secret_id: str, region: str) -> tuple[str, str]:
    """(user, password) of the EMR Thrift server, from a secret `{"username": ..., "password": ...}`: the server
    checks them and dbt's `emr` target sends them, and neither is ever in a step's arguments."""
    text = secret_string(secret_id, region, "ENCORE_SPARK_THRIFT_SECRET_ID")
    try:
        secret = json.loads(text)
        user, password = secret["username"], secret["password"]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"secret {secret_id!r} is not the Thrift server's JSON (username, password)") from None
    if not isinstance(user, str) or not isinstance(password, str) or not user or len(password) < 16:
        raise UserError(f"secret {secret_id!r} needs a username and a password of 16 characters or more") from None
    return user, password
