"""The package's metadata (pyproject.toml) agrees with the pinned requirements and the tree:
every dependency it declares is pinned in requirements*.txt at a version it admits and the
other way round, its entry point exists, and its license file is the one it names."""
from __future__ import annotations

import importlib
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def pins(name: str) -> dict[str, Requirement]:
    """``name``'s pinned requirements, following ``-r`` includes: canonical name -> requirement."""
    found: dict[str, Requirement] = {}
    for line in (ROOT / name).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            found.update(pins(line.removeprefix("-r ").strip()))
            continue
        requirement = Requirement(line)
        assert [spec.operator for spec in requirement.specifier] == ["=="], f"{name}: {line} is not pinned"
        found[canonicalize_name(requirement.name)] = requirement
    return found


def declared() -> dict[str, Requirement]:
    requirements = [*PYPROJECT["dependencies"], *PYPROJECT["optional-dependencies"]["dev"]]
    return {canonicalize_name(r.name): r for r in map(Requirement, requirements)}


def test_every_declared_dependency_is_pinned_and_every_pin_declared():
    assert sorted(declared()) == sorted(pins("requirements.txt"))


def test_the_pinned_versions_satisfy_the_declared_bounds_and_extras():
    pinned = pins("requirements.txt")
    for name, requirement in declared().items():
        [version] = [spec.version for spec in pinned[name].specifier]
        assert requirement.specifier.contains(version), f"{name}=={version} is outside {requirement.specifier}"
        assert requirement.extras == pinned[name].extras, name


def test_the_lambda_requirements_are_runtime_dependencies():
    runtime = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["dependencies"]}
    assert set(pins("requirements-lambda.txt")) | set(pins("requirements-lambda-arrow.txt")) <= runtime


def test_the_entry_point_exists():
    module, _, attribute = PYPROJECT["scripts"]["shopstream"].partition(":")
    assert callable(getattr(importlib.import_module(module), attribute))


def test_the_license_file_is_the_apache_license_the_metadata_names():
    assert PYPROJECT["license"] == "Apache-2.0" and PYPROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text  # the full text, not a notice
