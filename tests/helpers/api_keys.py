"""An API key store of a test's own, holding one key, and the header that sends the key."""

from pathlib import Path

from python_jobs.serving.keys import KeyFile, KeyStore


def keyed(folder: Path, scopes: tuple[str, ...] = ("read", "events"), name: str = "tests") -> tuple[KeyStore, dict]:
    store = KeyStore(KeyFile(folder / "api-keys.json"))
    _, key = store.create(scopes, name)
    return store, {"Authorization": f"Bearer {key}"}
