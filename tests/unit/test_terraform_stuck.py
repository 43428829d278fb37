"""The emulator's intermittent Lambda create hang is recognised in terraform's output and
cut short (devstack/terraform.py), so `up` can start over instead of waiting minutes."""
from __future__ import annotations

import stat
import time

import pytest

from devstack import terraform


def fake_terraform(tmp_path, script: str):
    path = tmp_path / "terraform"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return terraform._Workspace(tmp_path, "http://127.0.0.1:9", str(path), None)


def test_a_lambda_function_still_creating_past_the_limit_stops_terraform(tmp_path):
    workspace = fake_terraform(tmp_path, 'echo \'aws_lambda_function.function["query-api"]: Still creating... [10s elapsed]\'\n'
                                         'echo \'aws_lambda_function.function["query-api"]: Still creating... [2m10s elapsed]\'\n'
                                         'sleep 30\n')
    started = time.monotonic()
    with pytest.raises(terraform.ApplyStuck, match=r'query-api.*2m10s'):
        workspace.run("apply", stuck_after=120)
    assert time.monotonic() - started < 20  # killed, not waited for


def test_the_409_of_the_providers_retry_is_the_same_hang(tmp_path):
    workspace = fake_terraform(tmp_path, 'echo "Error: creating Lambda Function (shopstream-query-api): operation error '
                                         'Lambda: CreateFunction, ResourceConflictException: Function already exist"\n'
                                         'exit 1\n')
    with pytest.raises(terraform.ApplyStuck, match="already exists"):
        workspace.run("apply", stuck_after=120)


def test_other_failures_and_slow_resources_that_are_not_functions_are_not_the_hang(tmp_path):
    workspace = fake_terraform(tmp_path, 'echo "aws_redshift_cluster.warehouse: Still creating... [3m0s elapsed]"\n'
                                         'echo "Error: something else"\nexit 1\n')
    with pytest.raises(terraform.TerraformError) as raised:
        workspace.run("apply", stuck_after=120)
    assert not isinstance(raised.value, terraform.ApplyStuck)
