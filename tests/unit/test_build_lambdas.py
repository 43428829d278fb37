"""infra/build_lambdas.py: function zips hold what their handler imports, nothing else,
and are byte-for-byte reproducible (Terraform's source_code_hash changes only with code)."""
from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT


def load_builder():
    spec = importlib.util.spec_from_file_location("shopstream_build_lambdas", ROOT / "infra" / "build_lambdas.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


builder = load_builder()
HANDLERS = {
    "ingest": "ingest/handler.py",
    "invoice-writer": "consumers/invoices/handler.py",
    "query-api": "query_api/handler.py",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("lambda")
    return {key: builder.build_function(key, out) for key in builder.FUNCTIONS}


def test_every_function_has_a_zip(built):
    assert sorted(built) == sorted(HANDLERS)
    assert {path.name for path in built.values()} == {"ingest.zip", "invoice-writer.zip", "query-api.zip"}


@pytest.mark.parametrize("key", sorted(HANDLERS))
def test_zip_holds_its_handler_and_the_packages_it_needs(built, key):
    names = zipfile.ZipFile(built[key]).namelist()
    assert HANDLERS[key] in names
    _, packages = builder.FUNCTIONS[key]
    assert {name.split("/")[0] for name in names} == set(packages)
    for package in packages:
        assert f"{package}/__init__.py" in names
        on_disk = {p.relative_to(ROOT).as_posix() for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts}
        assert on_disk <= set(names), f"{key}: missing {sorted(on_disk - set(names))}"


@pytest.mark.parametrize("key", sorted(HANDLERS))
def test_zip_holds_only_python_sources(built, key):
    names = zipfile.ZipFile(built[key]).namelist()
    assert names == sorted(names)
    assert all(name.endswith(".py") and "__pycache__" not in name for name in names)
    assert not any(name.startswith(("devstack/", "tests/", "bench/", "scripts/")) for name in names)


def test_ingest_carries_no_database_code(built):
    names = zipfile.ZipFile(built["ingest"]).namelist()
    assert not any(name.startswith(("dynamo_models/", "consumers/", "query_api/")) for name in names)


def test_entries_have_fixed_times_and_permissions(built):
    for path in built.values():
        for info in zipfile.ZipFile(path).infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.external_attr >> 16 in (0o100644, 0o100755)


def test_building_twice_gives_identical_bytes(built, tmp_path):
    for key, first in built.items():
        again = builder.build_function(key, tmp_path)
        assert again.read_bytes() == first.read_bytes(), key


def test_a_changed_source_changes_the_zip(tmp_path):
    # a copy of the repository's packages, so the test can change one
    root = tmp_path / "repo"
    for package in ("pipeline", "ingest"):
        for source in (ROOT / package).rglob("*.py"):
            if "__pycache__" in source.parts:
                continue
            target = root / source.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    (root / "ingest" / "__pycache__").mkdir(exist_ok=True)
    (root / "ingest" / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"compiled")
    (root / "ingest" / "notes.txt").write_text("not code")
    before = builder.build_function("ingest", tmp_path / "a", root=root).read_bytes()
    (root / "ingest" / "handler.py").write_text((root / "ingest" / "handler.py").read_text() + "\n# changed\n")
    after = builder.build_function("ingest", tmp_path / "b", root=root)
    assert after.read_bytes() != before
    assert not any("__pycache__" in n or n.endswith(".txt") for n in zipfile.ZipFile(after).namelist())


def test_unknown_function_and_missing_package_are_clear_errors(tmp_path):
    with pytest.raises(builder.BuildError, match="unknown function 'archive'"):
        builder.build_function("archive", tmp_path)
    with pytest.raises(builder.BuildError, match="package pipeline/ not found"):
        builder.build_function("ingest", tmp_path, root=tmp_path)


def test_layer_python_version_comes_from_the_runtime():
    assert builder.python_version("python3.12") == "3.12"
    with pytest.raises(builder.BuildError, match="not a Python runtime"):
        builder.python_version("nodejs20.x")


def test_layer_is_kept_when_requirements_are_unchanged(tmp_path, monkeypatch):
    # GIVEN a layer built from these requirements (recorded beside it)
    requirements = tmp_path / "requirements-lambda.txt"
    requirements.write_text("six==1.17.0\n")
    (tmp_path / "layer.zip").write_bytes(b"previous build")
    (tmp_path / "layer.zip.sha256").write_text(builder._layer_fingerprint(requirements, "python3.12") + "\n")
    calls = []
    monkeypatch.setattr(builder.subprocess, "run", lambda *a, **k: calls.append(a))
    # WHEN built again THEN pip is not run and the zip is kept
    path, rebuilt = builder.build_layer(tmp_path, runtime="python3.12", requirements=requirements)
    assert (rebuilt, calls, path.read_bytes()) == (False, [], b"previous build")
    # a different runtime or changed requirements make it stale
    assert builder._layer_fingerprint(requirements, "python3.13") != (tmp_path / "layer.zip.sha256").read_text().strip()
    requirements.write_text("six==1.16.0\n")
    assert builder._layer_fingerprint(requirements, "python3.12") != (tmp_path / "layer.zip.sha256").read_text().strip()


def test_pip_failure_is_reported_with_its_output(tmp_path, monkeypatch):
    requirements = tmp_path / "requirements-lambda.txt"
    requirements.write_text("no-such-package==0\n")

    class Failed:
        returncode = 1
        stdout = ""
        stderr = "ERROR: No matching distribution found for no-such-package==0"

    monkeypatch.setattr(builder.subprocess, "run", lambda *a, **k: Failed())
    with pytest.raises(builder.BuildError, match="No matching distribution found"):
        builder.build_layer(tmp_path, requirements=requirements)
    assert not (tmp_path / "layer.zip.sha256").exists()
