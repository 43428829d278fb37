"""The fault suite's stack (one for the session: ``terraform apply`` is the slow part) and
each case's frame: the sinks emptied before it, the injected faults removed after it,
its line of the summary printed at the end and written to ``build/faults/``."""
from __future__ import annotations

import time

import pytest

from devstack import stack
from devstack.emulator import free_port
from tests.faults import harness


@pytest.fixture(scope="session")
def fault_stack(tmp_path_factory):
    config = stack.StackConfig(state_dir=tmp_path_factory.mktemp("faults"), emulator_port=free_port(),
                               gateway_port=free_port(), admin_port=free_port())
    running = harness.Stack(config, stack.up(config, say=lambda line: None))
    yield running
    stack.down(config, quiet=True)


@pytest.fixture
def case(request, fault_stack, monkeypatch):
    """A case on empty sinks, with no fault installed; yields its summary line to fill."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", fault_stack.config.emulator_url)  # the stream replay's producer
    faults = harness.Faults(fault_stack.config.emulator_url)
    faults.clear()
    harness.empty_sinks(fault_stack)
    result = harness.CaseResult(case=request.node.name.removeprefix("test_")[:44], data=harness.DATA.name)
    started = time.monotonic()
    try:
        yield fault_stack, faults, result
    finally:
        result.seconds = round(time.monotonic() - started, 1)
        harness.RESULTS.append(result)
        if stack.is_up(fault_stack.config.emulator_url):
            faults.clear()


def pytest_terminal_summary(terminalreporter):
    lines = harness.summary_lines()
    if not lines:
        return
    path = harness.write_report()
    terminalreporter.section("fault suite")
    for line in lines:
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"  written to {path}")
