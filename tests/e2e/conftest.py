"""One local stack for the e2e modules that run on the bundled sample: `shopstream up`
(emulator, terraform apply, runtime) once for the package, not once per module.

``test_stack.py`` runs first (its reconciling tests need the sample alone in the sinks);
``test_stack_openapi.py`` (named to sort after it) then sends its generated requests to
the same stack. The stack is stopped after the last test of the package."""
from __future__ import annotations

import pytest

from devstack import stack
from devstack.emulator import free_port


@pytest.fixture(scope="package")
def local_stack(tmp_path_factory):
    config = stack.StackConfig(
        state_dir=tmp_path_factory.mktemp("stack"),
        emulator_port=free_port(), gateway_port=free_port(), admin_port=free_port(),
    )
    try:
        info = stack.up(config, say=lambda line: None)
        yield config, info
    finally:
        stack.down(config, quiet=True)
