"""boto3 clients for the lake and publish buckets (SigV4 always, the local endpoint when set)."""

from __future__ import annotations

from python_jobs.config import Settings
from python_jobs.errors import UserError


def s3_client(settings: Settings):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint,
        region_name=settings.region,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 3},
                      connect_timeout=5, read_timeout=60),  # an unreachable store fails in seconds, not minutes
    )


def ensure_buckets(settings: Settings) -> None:
    """Create the private lake and publish buckets when missing (local stack); check them on AWS."""
    from botocore.exceptions import ClientError, EndpointConnectionError

    client = s3_client(settings)
    for bucket in (settings.lake_bucket, settings.publish_bucket):
        try:
            client.head_bucket(Bucket=bucket)
        except EndpointConnectionError:
            raise UserError(f"S3 endpoint {settings.s3_endpoint} is unreachable; run `encore-recs up` or fix ENCORE_S3_ENDPOINT") from None
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in {"404", "NoSuchBucket"} and settings.local_s3:
                client.create_bucket(Bucket=bucket)
            else:
                raise UserError(f"bucket {bucket} is not usable ({code}); create it or check the credentials") from None


def delete_prefix(client, bucket: str, prefix: str) -> None:
    """Delete every object under `prefix`, a page (up to 1,000 keys) per request."""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys})


def read_bytes(settings: Settings, bucket: str, key: str) -> bytes | None:
    """An object's bytes from the store; None when the key does not exist."""
    client = s3_client(settings)
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except client.exceptions.NoSuchKey:
        return None


def read_json(settings: Settings, bucket: str, key: str) -> dict | None:
    """A JSON object from the store; None when the key does not exist."""
    import json

    body = read_bytes(settings, bucket, key)
    return None if body is None else json.loads(body)


def upload_tree(settings: Settings, path, key_prefix: str) -> str:
    """A file, or a folder's files, into the lake under `key_prefix` (HTML as HTML); the s3:// address. What a
    run writes on the driver's disk (its report, its Data Docs) is kept beside the run, as on EMR the disk goes
    with the cluster."""
    import mimetypes
    from pathlib import Path

    client = s3_client(settings)
    root = Path(path)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for file in files:
        key = key_prefix if root.is_file() else f"{key_prefix.rstrip('/')}/{file.relative_to(root).as_posix()}"
        client.upload_file(str(file), settings.lake_bucket, key,
                           ExtraArgs={"ContentType": mimetypes.guess_type(file.name)[0] or "application/octet-stream"})
    return f"s3://{settings.lake_bucket}/{key_prefix}"
