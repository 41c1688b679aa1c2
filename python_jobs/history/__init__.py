"""After a run: history rows, the per-run and morning reports, alerts."""
