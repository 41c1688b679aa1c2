"""A run's bookkeeping: its id, lock, recorded state, and the tables and folders it writes under its id."""
