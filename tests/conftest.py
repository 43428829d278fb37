"""Shared fixtures. Emulator-backed fixtures start a private emulator on a free port."""
from __future__ import annotations

import os
import pathlib

import pytest

# the local runtime's fixtures (aws, start_runtime), for every test module
pytest_plugins = ["tests.fixtures.runtime_fixtures", "tests.fixtures.postgres"]

ROOT = pathlib.Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample" / "online-retail-2010-12-01_to_03.csv"
SHARED_DATA = ROOT.parent / "shared" / "data" / "online-retail"

# Tests never talk to real AWS: fake credentials and a fixed region for every client.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
os.environ.setdefault("AWS_REGION", "eu-west-1")
os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
os.environ.pop("AWS_PROFILE", None)
# Handlers build their Powertools Metrics when imported, which any test module may do
# first (tests/contract/test_openapi_routes.py imports them all): the namespace must be set.
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "shopstream-tests")


@pytest.fixture(scope="session")
def emulator():
    """A patched moto server of our own for the whole test session."""
    from devstack.emulator import Emulator, free_port

    emu = Emulator.start(free_port())
    yield emu
    emu.stop()


@pytest.fixture
def shared_data() -> pathlib.Path:
    """The full real dataset beside the project (absent on a user's clone)."""
    if not (SHARED_DATA / "by-day").is_dir():
        pytest.skip(f"full dataset not found at {SHARED_DATA} (only present beside the project in CI/dev)")
    return SHARED_DATA
