"""The app's events: validated at the API, spooled to disk, landed on S3 in Kinesis Firehose's layout, ingested."""
