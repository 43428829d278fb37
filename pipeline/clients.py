"""The AWS client factory: the only place that knows about endpoints.

On AWS nothing is set and boto3 finds the regional endpoints. Locally the local runtime
sets ``AWS_ENDPOINT_URL`` (the standard variable, also honoured by the AWS CLI and
Terraform) to the embedded emulator, and S3 is addressed path-style.
"""
from __future__ import annotations

import boto3
from botocore.config import Config

from pipeline.settings import Settings


def client_config(*, max_pool_connections: int = 10) -> Config:
    return Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=30,
        max_pool_connections=max_pool_connections,
        s3={"addressing_style": "path"},
        tcp_keepalive=True,
    )


def make_client(service: str, settings: Settings, **config_overrides):
    """A boto3 client for ``service`` bound to the settings' region and endpoint."""
    return boto3.session.Session().client(
        service,
        region_name=settings.region,
        endpoint_url=settings.endpoint_url,
        config=client_config(**config_overrides),
    )
