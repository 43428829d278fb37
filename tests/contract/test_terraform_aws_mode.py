"""What `terraform apply` would create on AWS, proven offline: `terraform test` plans AWS mode
(emulator_endpoint = null) against a mocked AWS provider and asserts the Redshift resources,
the Secrets Manager wiring (a secret Redshift manages; no password anywhere in
Terraform), the Firehose configuration, the scheduled merge, names, the event source
mappings, the API's throttling and timeouts, its JWT authorizer on every route but the
OpenAPI document (the Cognito user pool, or an external issuer), encryption at rest (AWS-managed
keys or a customer key), deletion protection and PITR, private TLS-only buckets, roles without
wildcard actions, every alarm with its threshold notifying the alerts topic (and that
topic's key), the dashboard, and every function's JSON logging and tracing
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
        "names_follow_the_prefix": "pass",
        "event_source_mappings_read_the_stream_with_bounded_retries": "pass",
        "the_api_is_throttled_and_times_out_before_api_gateway": "pass",
        "limits_by_variable": "pass",
        "reserved_concurrency_is_a_whole_number": "pass",
        "data_is_protected_and_encrypted_with_aws_managed_keys": "pass",
        "a_customer_key_encrypts_everything_at_rest": "pass",
        "deletion_protection_can_be_turned_off": "pass",
        "roles_allow_only_what_each_function_calls": "pass",
        "every_alarm_notifies_the_alerts_topic": "pass",
        "alarm_thresholds_and_metrics": "pass",
        "alarm_thresholds_and_recipients_by_variable": "pass",
        "an_alert_address_must_be_an_email": "pass",
        "a_customer_key_encrypts_the_alerts_topic": "pass",
        "the_dashboard_shows_every_alarm_and_what_it_watches": "pass",
        "every_function_logs_json_and_is_traced": "pass",
        "the_log_level_in_lambdas_terms": "pass",
        "every_route_but_the_document_needs_a_token_with_its_scopes": "pass",
        "customer_tokens_get_their_number_from_the_pre_token_generation_trigger": "pass",
        "an_external_issuer_replaces_the_user_pool": "pass",
        "auth_cannot_be_turned_off_on_aws": "pass",
        "large_orders_are_announced_on_their_own_encrypted_topic_from_a_threshold": "pass",
        "a_large_order_threshold_is_a_positive_amount": "pass",
        "locally_tokens_are_checked_against_the_local_issuer": "pass",
        "no_auth_serves_every_route_without_a_token_and_tells_the_functions": "pass",
        "the_local_warehouse_password_has_every_kind_of_character_redshift_wants": "pass",
    }


@pytest.mark.e2e
def test_the_assertions_can_fail(tmp_path, placeholder_zips):
    # a variable the assertions pin changed: the plan no longer matches them (one small file
    # is enough to show a failing assertion fails the run; the whole suite takes a minute)
    passed, text = terraform.run_module_tests(tmp_path / "state", say=lambda _: None, files=(
        "tests/emulator_mode.tftest.hcl",), variables={"lambda_build_dir": placeholder_zips, "api_auth": "false"})
    assert not passed
    assert re.search(r'run "locally_tokens_are_checked_against_the_local_issuer"\.\.\. fail', text)
    assert "aws_mode.tftest.hcl" not in text  # only the file asked for ran
