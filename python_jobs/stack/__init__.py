"""The embedded local stack, in layers that import only downwards:

- `processes`, `state_folder`: pids, ports and the private state folder (the bottom);
- `jars`, `versitygw`: the JVM artifacts and the S3 server's binary, fetched or built once;
- `postgres`, `s3_server`: the two embedded services;
- `metastore` (over `postgres` and `jars`), then `cluster` (over the metastore and python_jobs.stack.spark's conf);
- `services`: `up`, `ready`, `down` and the environment every command exports (the top).
"""
