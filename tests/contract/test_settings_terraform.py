"""pipeline/settings.py and infra/terraform agree: each function gets exactly the
environment its Settings read, and each handler names a module of the repository."""
from __future__ import annotations

import re
from pathlib import Path

import hcl2
import pytest

from pipeline.settings import FUNCTION_ENV, POWERTOOLS_ENV
from tests.conftest import ROOT

TERRAFORM = ROOT / "infra" / "terraform"
_OPTIONS = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)
# The function resource sets ``merge(each.value.environment, {<Powertools variables>})``.
_MERGE = re.compile(r"^\$\{merge\(each\.value\.environment, \{(?P<body>[^{}]*)\}\)\}$")


def _load(name: str) -> dict:
    with open(TERRAFORM / name) as f:
        return hcl2.load(f, serialization_options=_OPTIONS)


def _resource(document: dict, kind: str, name: str) -> dict:
    return next(r[kind][name] for r in document["resource"] if kind in r and name in r[kind])


@pytest.fixture(scope="module")
def lambda_tf() -> dict:
    return _load("lambda.tf")


@pytest.fixture(scope="module")
def functions(lambda_tf) -> dict:
    return next(block["functions"] for block in lambda_tf["locals"] if "functions" in block)


def _powertools_keys(lambda_tf) -> set[str]:
    function = _resource(lambda_tf, "aws_lambda_function", "function")
    assert function["for_each"] == "${local.functions}"
    [environment] = function["environment"]
    match = _MERGE.match(environment["variables"])
    assert match, f"lambda.tf sets the environment in a form this test does not read: {environment['variables']}"
    return {part.split("=")[0].strip() for part in match["body"].split(",")}


def test_function_keys_are_the_settings_keys(functions):
    assert set(functions) == set(FUNCTION_ENV)


def test_powertools_variables_are_set_on_every_function(lambda_tf):
    assert _powertools_keys(lambda_tf) == POWERTOOLS_ENV


@pytest.mark.parametrize("key", sorted(FUNCTION_ENV))
def test_each_function_gets_exactly_its_settings(lambda_tf, functions, key):
    environment = set(functions[key]["environment"]) | _powertools_keys(lambda_tf)
    assert environment == FUNCTION_ENV[key] | POWERTOOLS_ENV


@pytest.mark.parametrize("key", sorted(FUNCTION_ENV))
def test_handlers_name_modules_of_the_repository(functions, key):
    module, _, attribute = functions[key]["handler"].rpartition(".")
    path = ROOT / Path(*module.split(".")).with_suffix(".py")
    assert path.is_file(), f"{key}: handler module {module} has no file {path.relative_to(ROOT)}"
    assert re.search(rf"^def {attribute}\(", path.read_text(), re.M), f"{module} defines no {attribute}()"


@pytest.mark.parametrize("key", sorted(FUNCTION_ENV))
def test_each_function_is_built_from_its_handler_with_the_layers_it_imports(functions, key):
    from tests.unit.test_build_lambdas import load_builder

    builder = load_builder()
    function = builder.FUNCTIONS[key]
    assert functions[key]["zip"] == function.zip
    assert functions[key]["handler"] == f"{function.handler_module}.lambda_handler"
    assert functions[key]["layers"] == builder.function_layers(key)


def test_terraform_builds_one_layer_version_per_layer_of_the_build(lambda_tf):
    from tests.unit.test_build_lambdas import load_builder

    builder = load_builder()
    layers = next(block["layers"] for block in lambda_tf["locals"] if "layers" in block)
    assert {key: value["zip"] for key, value in layers.items()} == {k: v.zip for k, v in builder.LAYERS.items()}


def test_max_body_bytes_matches_the_default(functions):
    from pipeline.settings import DEFAULT_MAX_BODY_BYTES

    assert int(functions["ingest"]["environment"]["SHOPSTREAM_MAX_BODY_BYTES"]) == DEFAULT_MAX_BODY_BYTES


def test_the_user_pools_trigger_is_built_from_its_handler_and_gets_only_powertools_settings():
    # auth.tf's pre token generation function is not one of local.functions (AWS mode only,
    # no Settings of its own), but is built and wired the same way
    from tests.unit.test_build_lambdas import load_builder

    auth_tf = _load("auth.tf")
    trigger = next(block["pre_token_generation"] for block in auth_tf["locals"] if "pre_token_generation" in block)
    builder = load_builder()
    function = builder.FUNCTIONS[trigger["key"]]
    assert trigger["key"] not in FUNCTION_ENV
    assert trigger["zip"] == function.zip
    assert trigger["handler"] == f"{function.handler_module}.lambda_handler"
    assert trigger["layers"] == builder.function_layers(trigger["key"])
    resource = _resource(auth_tf, "aws_lambda_function", "pre_token_generation")
    [environment] = resource["environment"]
    assert set(environment["variables"]) == POWERTOOLS_ENV
