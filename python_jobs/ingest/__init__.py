"""From the app's database to the lake: the raw schema, synthetic data, loading, faults, reconciliation, extract."""
