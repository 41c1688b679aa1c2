"""Errors a user can cause; the CLI prints them as one line and exits non-zero."""


class UserError(Exception):
    """A problem the user can fix: bad flag, bad file, unreachable service."""


class GateFailed(UserError):
    """A Great Expectations checkpoint failed; the run stops before the next stage."""


def unreachable_service(exc: BaseException) -> str | None:
    """One line for a service that went away or refused us where no stage caught it (S3, PostgreSQL), None for
    anything else. Matched by class name so that the CLI need not import boto or psycopg2 to recognise them."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    module = type(exc).__module__
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    if names & {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError"}:
        return f"the S3 store is unreachable ({first}); run `encore-recs up`, or check ENCORE_S3_ENDPOINT"
    if "NoCredentialsError" in names:
        return ("no credentials for S3 (ENCORE_S3_ENDPOINT is set, so the local store's keys are not used); "
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a role")
    if module.startswith("psycopg2") and "OperationalError" in names:
        return f"PostgreSQL is unreachable or refused us ({first}); run `encore-recs up`, or check ENCORE_PG_DSN"
    return None
