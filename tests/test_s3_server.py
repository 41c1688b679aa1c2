"""The local S3 server (versitygw) enforces SigV4: presigned URLs work for what they were signed for, nothing else."""

import time
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from python_jobs.publish.publish import presign


def _status(url: str, method: str = "GET") -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture(scope="module")
def obj(s3, stack):
    s3.put_object(Bucket=stack.publish_bucket, Key="tests/hello.json", Body=b'{"hello": 1}')
    return stack.publish_bucket, "tests/hello.json"


def test_presigned_url_downloads(s3, obj):
    url = presign(s3, *obj, seconds=60)
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b'{"hello": 1}'


def test_tampered_signature_and_key_are_refused(s3, obj):
    url = presign(s3, *obj, seconds=60)
    assert _status(url.replace("X-Amz-Signature=", "X-Amz-Signature=0")) == 403
    assert _status(url.replace("hello.json", "other.json")) == 403


def test_unsigned_request_is_refused(stack, obj):
    assert _status(f"{stack.s3_endpoint}/{obj[0]}/{obj[1]}") == 403


def test_expired_url_is_refused(s3, obj):
    url = presign(s3, *obj, seconds=1)
    time.sleep(2.1)
    assert _status(url) == 403


def test_get_signed_url_cannot_put_or_delete(s3, obj):
    url = presign(s3, *obj, seconds=60)
    assert _status(url, "PUT") == 403
    assert _status(url, "DELETE") == 403
    assert s3.get_object(Bucket=obj[0], Key=obj[1])["Body"].read() == b'{"hello": 1}'


@pytest.mark.parametrize("access_key", ["ENCUNKNOWNKEY000", "the real key"])
def test_unknown_key_or_wrong_secret_is_refused(stack, obj, access_key):
    from python_jobs.stack.s3_server import s3_credentials

    if access_key == "the real key":
        access_key = s3_credentials(stack)["access_key"]
    client = boto3.client("s3", endpoint_url=stack.s3_endpoint, region_name=stack.region,
                          aws_access_key_id=access_key, aws_secret_access_key="not-the-secret",
                          config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    with pytest.raises(ClientError) as caught:
        client.get_object(Bucket=obj[0], Key=obj[1])
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_any_s3_compatible_endpoint_is_used_as_an_external_store(stack, obj, monkeypatch):
    """ENCORE_S3_ENDPOINT naming a store the project did not start: credentials from AWS_*, buckets must exist."""
    from python_jobs.config import Settings
    from python_jobs.errors import UserError
    from python_jobs.stack.s3_server import s3_credentials
    from python_jobs.infra.s3 import ensure_buckets, s3_client

    creds = s3_credentials(stack)
    monkeypatch.setenv("ENCORE_S3_ENDPOINT", stack.s3_endpoint.replace("127.0.0.1", "localhost"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", creds["access_key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", creds["secret_key"])
    external = Settings.from_env()
    assert not external.local_s3
    ensure_buckets(external)
    assert s3_client(external).get_object(Bucket=obj[0], Key=obj[1])["Body"].read() == b'{"hello": 1}'
    monkeypatch.setenv("ENCORE_PUBLISH_BUCKET", "encore-not-there")
    with pytest.raises(UserError, match="bucket encore-not-there is not usable"):
        ensure_buckets(Settings.from_env())


def test_down_leaves_alone_a_process_that_a_stale_pid_file_names(tmp_path):
    """D5: after a crash the pid in a pid file may belong to anything; only a process that is what the file says
    is stopped, and the stale file goes."""
    import subprocess
    import time

    from python_jobs.stack.processes import command_line, stop_pid_file

    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    while "sleep" not in command_line(bystander.pid):  # until the child has exec'd
        time.sleep(0.01)
    try:
        pid_file = tmp_path / "server.pid"
        pid_file.write_text(str(bystander.pid))
        assert stop_pid_file(pid_file, "versitygw") is False
        assert bystander.poll() is None and not pid_file.exists()
        pid_file.write_text(str(bystander.pid))
        assert stop_pid_file(pid_file, "sleep 60") is True
        assert bystander.wait(timeout=10) is not None
        pid_file.write_text("not a pid")
        assert stop_pid_file(pid_file, "versitygw") is False and not pid_file.exists()
    finally:
        bystander.kill()
