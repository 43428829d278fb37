"""docs/deploy.md and infra/terraform describe the same module: every variable of
variables.tf has exactly one row in the guide's variable tables, showing its default as
written in the Terraform, every output of outputs.tf has exactly one row in its outputs
table, and neither table names anything the Terraform does not have.

Parsed with regular expressions rather than hcl2 on purpose: the guide shows each default
as it is spelt in variables.tf (``"rate(5 minutes)"``, ``["replay"]``, ``null``), so the
source text is what to compare with.
"""
from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT

TERRAFORM = ROOT / "infra" / "terraform"
GUIDE = ROOT / "docs" / "deploy.md"

_VARIABLE = re.compile(r'^variable "([A-Za-z0-9_]+)" \{\n(.*?)^\}', re.S | re.M)
_DEFAULT = re.compile(r"^\s+default\s+=\s+(.*?)\s*(?:#.*)?$", re.M)
_OUTPUT = re.compile(r'^output "([A-Za-z0-9_]+)" \{', re.M)
_ROW = re.compile(r"^\| `([A-Za-z0-9_]+)` \|(.*)$", re.M)


def _section(text: str, heading: str) -> str:
    """The text under ``## <heading>`` up to the next second-level heading."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"docs/deploy.md has no '## {heading}' section"
    return match.group(1)


def _rows(section: str) -> dict[str, list[str]]:
    """First cell (a backticked name) → the row's other cells, for every table row."""
    rows: dict[str, list[str]] = {}
    for name, rest in _ROW.findall(section):
        assert name not in rows, f"docs/deploy.md lists {name!r} twice"
        rows[name] = [cell.strip() for cell in rest.strip().strip("|").split("|")]
    return rows


@pytest.fixture(scope="module")
def guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def variables() -> dict[str, str]:
    """Every variable of the module → its default as written (``(required)`` without one)."""
    found: dict[str, str] = {}
    for path in sorted(TERRAFORM.glob("*.tf")):
        for name, body in _VARIABLE.findall(path.read_text(encoding="utf-8")):
            default = _DEFAULT.search(body)
            found[name] = default.group(1) if default else "(required)"
    return found


@pytest.fixture(scope="module")
def outputs() -> set[str]:
    return {name for path in sorted(TERRAFORM.glob("*.tf")) for name in _OUTPUT.findall(path.read_text(encoding="utf-8"))}


def test_the_parsers_find_the_module(variables, outputs):
    # GIVEN the module's own files
    # THEN the parsing sees what they declare (a broken regex would make every test below vacuous)
    assert len(variables) >= 50 and variables["merge_schedule_expression"] == '"rate(5 minutes)"'
    assert variables["producers"] == '["replay"]' and variables["deletion_protection"] == "null"
    assert {"api_endpoint", "warehouse", "auth"} <= outputs


def test_every_variable_has_one_row_with_its_default(guide, variables):
    # GIVEN the guide's variable tables
    rows = _rows(_section(guide, "Variables"))
    # WHEN each variable of variables.tf is looked up there
    missing = sorted(set(variables) - set(rows))
    wrong = {name: (rows[name][0], f"`{default}`") for name, default in variables.items()
             if name in rows and rows[name][0] != f"`{default}`"}
    # THEN each has a row, and the row shows the default the Terraform gives it
    assert not missing, f"variables missing from docs/deploy.md: {missing}"
    assert not wrong, f"defaults in docs/deploy.md that differ from variables.tf (guide, terraform): {wrong}"


def test_the_variable_tables_name_only_variables(guide, variables):
    # GIVEN the names in the guide's variable tables
    rows = _rows(_section(guide, "Variables"))
    # THEN every one is a variable of the module (none left behind by a removal or rename)
    assert not sorted(set(rows) - set(variables)), "rows of docs/deploy.md naming no variable"


def test_every_output_has_one_row_and_nothing_else(guide, outputs):
    # GIVEN the guide's outputs table
    rows = _rows(_section(guide, "Outputs"))
    # THEN it lists exactly the outputs of outputs.tf
    assert sorted(outputs - set(rows)) == [], "outputs missing from docs/deploy.md"
    assert sorted(set(rows) - outputs) == [], "rows of docs/deploy.md naming no output"
