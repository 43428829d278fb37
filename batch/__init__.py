"""Daily transaction files dropped in S3, loaded through the same road as the stream."""
