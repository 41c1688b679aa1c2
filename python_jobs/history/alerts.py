"""One message when the night's run fails: a JSON POST to `ENCORE_ALERT_WEBHOOK` (a chat webhook, a pager).

`{"text", "run_id", "stage", "reason", "report"}`: `text` is one line a chat
shows as it is. A webhook that cannot be reached is a warning on stderr,
never a second failure: the run's own error is what the caller reports.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request

TIMEOUT_SECONDS = 5


def send(url: str | None, run_id: str, stage: str, reason: str, report: str | None = None) -> bool:
    """POST the alert; True when the webhook answered 2xx. Nothing is sent without a URL."""
    if not url:
        return False
    message = {"text": f"encore-recs run {run_id} failed in {stage}: {reason}" + (f" (report: {report})" if report else ""),
               "run_id": run_id, "stage": stage, "reason": reason, "report": report}
    request = urllib.request.Request(url, data=json.dumps(message).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:
            return 200 <= answer.status < 300
    except (OSError, ValueError) as exc:  # unreachable, refused, timed out, HTTP error, malformed URL
        print(f"encore-recs: warning: the alert for run {run_id} was not delivered to the webhook ({exc})",
              file=sys.stderr)
        return False


def from_environment(run_id: str, stage: str, reason: str, report: str | None = None) -> bool:
    return send(os.environ.get("ENCORE_ALERT_WEBHOOK"), run_id, stage, reason, report)
