"""What `terraform apply` would create on AWS, proven offline: `terraform test` plans AWS mode
(emulator_endpoint = null) against a mocked AWS provider and asserts the Redshift resources,
the Secrets Manager wiring (a secret Redshift manages; no password anywhere in
Terraform), the Firehose configuration and the scheduled merge
(infra/terraform/tests/aws_mode.tftest.hcl)."""
from __future__ import annotations

import re

import pytest

from devstack import terraform
from tests.unit.test_build_lambdas import load_builder


@pytest.fixture(scope="module")
def placeholder_zips(tmp_path_factory):
    """filebase64sha256() needs files; a plan does not need real code."""
    directory = tmp_path_factory.mktemp("zips")
    for name in load_builder().zip_names():
        (directory / name).write_bytes(b"placeholder")
    return directory


@pytest.mark.e2e
def test_aws_mode_plans_what_the_assertions_describe(tmp_path, placeholder_zips):
    passed, text = terraform.run_module_tests(tmp_path / "state", variables={"lambda_build_dir": placeholder_zips},
                                              say=lambda _: None)
    runs = dict(re.findall(r'run "([^"]+)"\.\.\. (pass|fail|skip)', text))
    assert passed, text[-4000:]
    assert runs == {
        "serverless_warehouse_with_a_secret_redshift_manages": "pass",
        "firehose_copies_the_staging_columns_with_the_managed_secret": "pass",
        "the_merge_runs_on_a_schedule_through_the_data_api": "pass",
        "stream_consumers_retry_so_that_nothing_is_archived_twice": "pass",
        "provisioned_cluster_by_variable": "pass",
        "size_class_thresholds_are_ordered_amounts": "pass",
        "a_size_class_threshold_is_a_number": "pass",
    }


@pytest.mark.e2e
def test_the_assertions_can_fail(tmp_path, placeholder_zips):
    # a variable the assertions pin changed: the plan no longer matches them
    passed, text = terraform.run_module_tests(tmp_path / "state", say=lambda _: None, variables={
        "lambda_build_dir": placeholder_zips, "merge_schedule_expression": "rate(1 minute)"})
    assert not passed
    assert re.search(r'run "the_merge_runs_on_a_schedule_through_the_data_api"\.\.\. fail', text)
