"""API keys: who may call `/v1/*`, and for what (scope `read`: the lists and the run; `events`: POST /v1/events).

A key is shown once, when it is created, and only its SHA-256 is kept: a key
holds 256 random bits, so its plain hash is as hard to reverse as the key is
to guess, and a copy of the store admits no one. The store is a JSON file in
the state folder (0600), or on AWS a Secrets Manager secret of the same JSON
(ENCORE_API_KEYS_SECRET_ID). `serve` re-reads the file when it changes (one
stat per call) and the secret every `SECRET_REFRESH_SECONDS`, so a revoked key
is refused without a restart. A key reads `encore_<id>_<secret>`: the id,
shown by `keys list`, finds the entry; the hash comparison is constant-time.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from python_jobs.config import Settings
from python_jobs.errors import UserError

SCOPES = ("read", "events")
PREFIX = "encore"
SECRET_REFRESH_SECONDS = 60
log = logging.getLogger("encore.keys")


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    scopes: tuple[str, ...]
    created: str
    sha256: str


def parse_scopes(text: str) -> tuple[str, ...]:
    """'read', 'events' or 'read,events' (either order) -> the scopes in SCOPES' order."""
    given = {part.strip() for part in text.split(",")}
    if not given or not given <= set(SCOPES):
        raise UserError(f"--scope {text!r} is not a scope; use read, events or read,events")
    return tuple(s for s in SCOPES if s in given)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class KeyFile:
    """The store as a file: written whole and renamed into place (0600), so a reader sees the old or the new."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> str | None:
        try:
            return self.path.read_text()
        except FileNotFoundError:
            return None

    def version(self) -> tuple:
        """Changes whenever the file is replaced (a new inode each time): cheap enough for every request."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return ()
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    @contextmanager
    def locked(self):
        """One writer at a time (two `keys create` at once keep both keys)."""
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def write(self, text: str) -> None:
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, self.path)

    def __str__(self) -> str:
        return str(self.path)


class KeySecret:
    """The store as a Secrets Manager secret (created beforehand, holding `{"keys": []}`): `serve` reads it with
    secretsmanager:GetSecretValue, `keys create|revoke` write it with PutSecretValue."""

    def __init__(self, secret_id: str, region: str, clock=time.monotonic) -> None:
        self.secret_id, self.region, self.clock = secret_id, region, clock

    def read(self) -> str:
        from python_jobs.db_secret import secret_string

        return secret_string(self.secret_id, self.region, "ENCORE_API_KEYS_SECRET_ID")

    def version(self) -> int:
        return int(self.clock() // SECRET_REFRESH_SECONDS)

    @contextmanager
    def locked(self):
        yield  # Secrets Manager has no lock: keys are created by hand, one at a time

    def write(self, text: str) -> None:
        import boto3

        boto3.client("secretsmanager", region_name=self.region).put_secret_value(SecretId=self.secret_id,
                                                                                  SecretString=text)

    def __str__(self) -> str:
        return f"secret {self.secret_id}"


class KeyStore:
    def __init__(self, backend: KeyFile | KeySecret) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        self._version = None
        self._keys: dict[str, ApiKey] = {}

    def _parse(self, text: str | None) -> dict[str, ApiKey]:
        if not text:
            return {}
        try:
            entries = json.loads(text)["keys"]
            return {e["id"]: ApiKey(e["id"], e["name"], tuple(e["scopes"]), e["created"], e["sha256"])
                    for e in entries}
        except (ValueError, KeyError, TypeError):
            raise UserError(f"the API key store ({self.backend}) is not a key list; restore it, or remove it and "
                            "create the keys again") from None

    def _save(self, keys: dict[str, ApiKey]) -> None:
        self.backend.write(json.dumps({"keys": [asdict(k) for k in keys.values()]}, indent=1) + "\n")

    def list(self) -> list[ApiKey]:
        return sorted(self._parse(self.backend.read()).values(), key=lambda k: (k.created, k.id))

    def create(self, scopes: tuple[str, ...], name: str) -> tuple[ApiKey, str]:
        """A new key: (its entry, the key itself, which is not kept anywhere)."""
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", name):
            raise UserError(f"--name {name!r} is not a key name; use 1-64 letters, digits, '.', '_' or '-'")
        with self.backend.locked():
            keys = self._parse(self.backend.read())
            key_id = secrets.token_hex(4)
            while key_id in keys:
                key_id = secrets.token_hex(4)
            token = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
            created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            keys[key_id] = ApiKey(key_id, name, scopes, created, _digest(token))
            self._save(keys)
        return keys[key_id], token

    def revoke(self, key_id: str) -> ApiKey:
        with self.backend.locked():
            keys = self._parse(self.backend.read())
            if key_id not in keys:
                raise UserError(f"no API key has the id {key_id!r}; `encore-recs keys list` shows them")
            gone = keys.pop(key_id)
            self._save(keys)
        return gone

    def _current(self) -> dict[str, ApiKey]:
        """The keys as stored now: read again when the store changed (a key created or revoked meanwhile). A store
        that cannot be read any more leaves the keys last read in force, with a warning."""
        version = self.backend.version()
        if version != self._version:
            with self._lock:
                if version != self._version:
                    try:
                        self._keys = self._parse(self.backend.read())
                    except UserError as exc:
                        if self._version is None:
                            raise
                        log.warning("API keys not re-read, the last ones read stay in force: %s", exc)
                    self._version = version
        return self._keys

    def count(self) -> int:
        return len(self._current())

    def check(self, token: str) -> ApiKey | None:
        """The key's entry when `token` is a stored key, else None."""
        prefix, _, rest = token.partition("_")
        entry = self._current().get(rest.partition("_")[0])
        if prefix != PREFIX or entry is None:
            return None
        return entry if hmac.compare_digest(entry.sha256, _digest(token)) else None


def key_store(settings: Settings) -> KeyStore:
    """The API's key store: the state folder's `api-keys.json`, or the secret ENCORE_API_KEYS_SECRET_ID names."""
    if settings.api_keys_secret_id:
        return KeyStore(KeySecret(settings.api_keys_secret_id, settings.region))
    return KeyStore(KeyFile(settings.state_dir / "api-keys.json"))
