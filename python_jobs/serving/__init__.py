"""`encore-recs serve`: a read-only API and web page over the latest published run."""
