"""The archive consumer: every invoice event, as delivered, in S3 as Parquet (hive partitions)."""
