"""The published run: JSON lines per user and listing, the manifest and presigned URLs, `latest` last."""
