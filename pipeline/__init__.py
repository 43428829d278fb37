"""Shared core of shopstream: the invoice event contract, the Kaggle row parser, the
Kinesis record codec, the partition key, settings, the AWS client factory and errors.

Every Lambda package and script builds on this package; no handler lives here.
"""
