"""The local S3 server checks signatures: presigned URLs work, tampered, expired and unsigned ones do not."""

import time
import urllib.error
import urllib.request

import pytest

from python_jobs.publish import presign


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
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
