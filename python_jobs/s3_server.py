"""The local S3 API server: moto's S3 backend behind real SigV4 authentication.

moto stores objects faithfully but does not check signatures on presigned
URLs, so every request passes through `SigV4Verifier` first: header-signed
and query-signed (presigned) requests are verified against the one key pair
the local stack generated, expired URLs are refused, and unsigned requests
get 403. Run as `python -m python_jobs.s3_server --port P --credentials FILE`.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import time
from calendar import timegm
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import parse_qsl, quote

MAX_CLOCK_SKEW_SECONDS = 900


def _error(start_response: Callable, code: str, message: str) -> list[bytes]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()
    start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body]


def _sign(secret: str, date: str, region: str, service: str, string_to_sign: str) -> str:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def _canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    encoded = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def _amz_time(stamp: str) -> float:
    return float(timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ")))


class SigV4Verifier:
    """WSGI middleware that admits only requests signed with the configured key."""

    def __init__(self, app: Callable, access_key: str, secret_key: str) -> None:
        self.app = app
        self.access_key = access_key
        self.secret_key = secret_key

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        problem = self.check(environ)
        if problem is not None:
            return _error(start_response, *problem)
        return self.app(environ, start_response)

    def check(self, environ: dict) -> tuple[str, str] | None:
        raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/")
        path, _, query = raw_uri.partition("?")
        pairs = parse_qsl(query, keep_blank_values=True)
        params = dict(pairs)
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        if environ.get("CONTENT_LENGTH"):
            headers["content-length"] = environ["CONTENT_LENGTH"]

        if "X-Amz-Signature" in params:
            credential = params.get("X-Amz-Credential", "")
            signed = params.get("X-Amz-SignedHeaders", "host").split(";")
            amz_date = params.get("X-Amz-Date", "")
            signature = params["X-Amz-Signature"]
            payload = "UNSIGNED-PAYLOAD"
            query_pairs = [(k, v) for k, v in pairs if k != "X-Amz-Signature"]
            try:
                expires = int(params.get("X-Amz-Expires", "0"))
                issued = _amz_time(amz_date)
            except ValueError:
                return ("AuthorizationQueryParametersError", "X-Amz-Date or X-Amz-Expires is malformed")
            if time.time() > issued + expires:
                return ("AccessDenied", "Request has expired")
        elif headers.get("authorization", "").startswith("AWS4-HMAC-SHA256 "):
            fields = dict(
                part.strip().split("=", 1)
                for part in headers["authorization"][len("AWS4-HMAC-SHA256 "):].split(",")
                if "=" in part
            )
            credential = fields.get("Credential", "")
            signed = fields.get("SignedHeaders", "").split(";")
            signature = fields.get("Signature", "")
            amz_date = headers.get("x-amz-date", "")
            payload = headers.get("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
            query_pairs = pairs
            try:
                if abs(time.time() - _amz_time(amz_date)) > MAX_CLOCK_SKEW_SECONDS:
                    return ("RequestTimeTooSkewed", "The difference between the request time and now is too large")
            except ValueError:
                return ("AccessDenied", "X-Amz-Date is missing or malformed")
        else:
            return ("AccessDenied", "Anonymous access is refused: sign the request or use a presigned URL")

        scope_parts = credential.split("/")
        if len(scope_parts) != 5 or scope_parts[0] != self.access_key:
            return ("InvalidAccessKeyId", "The AWS access key id you provided does not exist in our records")
        _, date, region, service, _ = scope_parts
        canonical_headers = "".join(
            f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed
        )
        canonical_request = "\n".join(
            [environ["REQUEST_METHOD"], path, _canonical_query(query_pairs), canonical_headers, ";".join(signed), payload]
        )
        string_to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256",
                amz_date,
                "/".join(scope_parts[1:]),
                hashlib.sha256(canonical_request.encode()).hexdigest(),
            ]
        )
        expected = _sign(self.secret_key, date, region, service, string_to_sign)
        if not hmac.compare_digest(expected, signature):
            return ("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided")
        return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="local S3 API server with SigV4 authentication")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--credentials", type=Path, required=True)
    args = parser.parse_args(argv)

    from moto.moto_server.werkzeug_app import create_backend_app
    from werkzeug.serving import run_simple

    creds = json.loads(args.credentials.read_text())
    app = SigV4Verifier(
        create_backend_app("s3"),
        creds["access_key"],
        creds["secret_key"],
    )
    run_simple("127.0.0.1", args.port, app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
