"""infra/build_lambdas.py: function zips hold what their handler imports, nothing else,
each function gets only the layers it imports from, and zips are byte-for-byte
reproducible (Terraform's source_code_hash changes only with code)."""
from __future__ import annotations

import importlib.util
import re
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
    "pre-token-generation": "identity/handler.py",
    "archive-writer": "consumers/archive/handler.py",
    "firehose-transform": "firehose/handler.py",
    "order-notifier": "consumers/notifications/handler.py",
    "warehouse-merge": "warehouse/merge/handler.py",
    "batch": "batch/handler.py",
}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("lambda")
    return {key: builder.build_function(key, out) for key in builder.FUNCTIONS}


def test_every_function_has_a_zip(built):
    assert sorted(built) == sorted(HANDLERS)
    assert {path.name for path in built.values()} == {f"{key}.zip" for key in HANDLERS}


@pytest.mark.parametrize("key", sorted(HANDLERS))
def test_zip_holds_its_handler_and_every_module_it_imports(built, key):
    # GIVEN the zip of a function
    names = set(zipfile.ZipFile(built[key]).namelist())
    assert HANDLERS[key] in names
    # THEN importing its handler from the zip alone needs no other project file: every
    # project module it imports (followed by Python itself) is there, with its packages
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        zipfile.ZipFile(built[key]).extractall(tmp)
        probe = (f"import sys; sys.path.insert(0, {tmp!r}); import {builder.FUNCTIONS[key].handler_module}; "
                 f"roots = {tuple(sorted(builder.PROJECT_PACKAGES))!r}; "
                 "leaks = [m.__file__ for m in list(sys.modules.values()) if getattr(m, '__file__', None) "
                 f"and m.__name__.split('.')[0] in roots and not m.__file__.startswith({tmp!r})]; "
                 "assert not leaks, leaks")
        result = subprocess.run([sys.executable, "-c", probe], cwd=tmp, capture_output=True, text=True,
                                env={"PATH": "/usr/bin:/bin", "AWS_REGION": "eu-west-1", "POWERTOOLS_METRICS_NAMESPACE": "t"})
        assert result.returncode == 0, result.stderr[-2000:]


def test_a_function_carries_only_what_it_imports(built):
    # the ingest function has no database code, the query API no producer, none has local-mode code
    ingest = zipfile.ZipFile(built["ingest"]).namelist()
    query = zipfile.ZipFile(built["query-api"]).namelist()
    assert not any(name.startswith(("dynamo_models/", "consumers/", "query_api/")) for name in ingest)
    assert "ingest/producer.py" not in query and "pipeline/codec.py" not in query


def test_imports_are_followed_through_relative_and_from_forms(tmp_path):
    # GIVEN a handler importing through `from . import`, `from pkg import module` and an import inside a function
    pkg = tmp_path / "pipeline"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "handler.py").write_text("from . import a\nfrom pipeline import b\ndef f():\n    import pipeline.c\n")
    for name, body in (("a", "import json\n"), ("b", "from .d import x\n"), ("c", "import pyarrow\n"),
                       ("d", "x = 1\n"), ("unused", "")):
        (pkg / f"{name}.py").write_text(body)
    found = builder.closure("pipeline.handler", tmp_path)
    # THEN every module it reaches is there, the unused one is not, and pyarrow is a third-party need
    assert {p.name for p in found.files} == {"__init__.py", "handler.py", "a.py", "b.py", "c.py", "d.py"}
    assert found.third_party == {"pyarrow"}


def test_local_mode_code_is_never_packaged(tmp_path):
    pkg = tmp_path / "pipeline"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "handler.py").write_text("from devstack.runtime import client\n")
    with pytest.raises(builder.BuildError, match="local-mode code"):
        builder.closure("pipeline.handler", tmp_path)


def test_pyarrow_lands_only_in_the_functions_that_import_it():
    layers = {key: builder.function_layers(key) for key in HANDLERS}
    assert layers.pop("archive-writer") == ["deps", "arrow"]
    assert all(value == ["deps"] for value in layers.values()), layers


def test_the_user_pools_trigger_carries_no_api_or_database_code(built):
    names = zipfile.ZipFile(built["pre-token-generation"]).namelist()
    assert {"identity/core.py", "identity/handler.py", "pipeline/auth.py", "pipeline/events.py"} <= set(names)
    assert not any(name.startswith(("query_api/", "dynamo_models/", "ingest/", "consumers/")) for name in names)


def test_the_invoice_writer_carries_no_archive_code(built):
    names = zipfile.ZipFile(built["invoice-writer"]).namelist()
    assert "consumers/records.py" in names and not any(n.startswith("consumers/archive/") for n in names)


def test_an_import_no_layer_provides_is_a_build_error(tmp_path, monkeypatch):
    pkg = tmp_path / "pipeline"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "handler.py").write_text("import requests\n")
    monkeypatch.setitem(builder.FUNCTIONS, "probe", builder.Function("probe.zip", "pipeline.handler"))
    with pytest.raises(builder.BuildError, match="requests, which neither the Lambda runtime nor a layer"):
        builder.function_layers("probe", tmp_path)


@pytest.mark.parametrize("key", sorted(HANDLERS))
def test_zip_holds_only_python_sources_and_the_sql_the_merge_reads(built, key):
    names = zipfile.ZipFile(built[key]).namelist()
    assert names == sorted(names)
    sql = [name for name in names if name.endswith(".sql")]
    assert all((name.endswith(".py") or name in sql) and "__pycache__" not in name for name in names)
    if key == "warehouse-merge":  # every statement file the loader reads travels with it
        on_disk = {p.relative_to(ROOT).as_posix() for p in (ROOT / "warehouse" / "sql").rglob("*.sql")}
        assert set(sql) == on_disk and "warehouse/sql/merge.sql" in on_disk
    else:
        assert sql == []
    assert not any(name.startswith(("devstack/", "tests/", "bench/", "scripts/")) for name in names)


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
    with pytest.raises(builder.BuildError, match="module ingest.handler not found"):
        builder.build_function("ingest", tmp_path, root=tmp_path)


def test_layer_python_version_comes_from_the_runtime():
    assert builder.python_version("python3.12") == "3.12"
    with pytest.raises(builder.BuildError, match="not a Python runtime"):
        builder.python_version("nodejs20.x")


def test_layer_is_kept_when_its_lock_is_unchanged(tmp_path, monkeypatch):
    # GIVEN a layer built from this lock (recorded beside it)
    lock = tmp_path / "requirements-lambda.lock"
    lock.write_text("six==1.17.0 --hash=sha256:" + "0" * 64 + "\n")
    (tmp_path / "layer.zip").write_bytes(b"previous build")
    (tmp_path / "layer.zip.sha256").write_text(builder._layer_fingerprint(lock, "python3.12") + "\n")
    calls = []
    monkeypatch.setattr(builder.subprocess, "run", lambda *a, **k: calls.append(a))
    # WHEN built again THEN pip is not run and the zip is kept
    path, rebuilt = builder.build_layer(tmp_path, runtime="python3.12", lock=lock)
    assert (rebuilt, calls, path.read_bytes()) == (False, [], b"previous build")
    # a different runtime or a changed lock make it stale
    assert builder._layer_fingerprint(lock, "python3.13") != (tmp_path / "layer.zip.sha256").read_text().strip()
    lock.write_text("six==1.16.0 --hash=sha256:" + "0" * 64 + "\n")
    assert builder._layer_fingerprint(lock, "python3.12") != (tmp_path / "layer.zip.sha256").read_text().strip()


class Failed:
    returncode = 1
    stdout = ""
    stderr = "ERROR: No matching distribution found for no-such-package==0"


def test_pip_failure_is_reported_with_its_output(tmp_path, monkeypatch):
    lock = tmp_path / "requirements-lambda.lock"
    lock.write_text("no-such-package==0\n")
    monkeypatch.setattr(builder.subprocess, "run", lambda *a, **k: Failed())
    with pytest.raises(builder.BuildError, match="No matching distribution found"):
        builder.build_layer(tmp_path, lock=lock)
    assert not (tmp_path / "layer.zip.sha256").exists()


def test_the_layer_is_installed_from_its_lock_with_hashes_only(tmp_path, monkeypatch):
    # WHEN a layer is built from the repository's lock
    commands = []
    monkeypatch.setattr(builder.subprocess, "run", lambda command, **k: commands.append(command) or Failed())
    with pytest.raises(builder.BuildError):
        builder.build_layer(tmp_path, force=True)
    # THEN pip installs exactly the lock, every artifact checked against its hash, for the Lambda platform
    [command] = commands
    assert command[command.index("-r") + 1] == str(ROOT / "requirements-lambda.lock")
    assert {"--require-hashes", "--no-deps", "--only-binary=:all:", "--no-compile"} <= set(command)
    assert command[command.index("--python-version") + 1] == "3.12"


@pytest.mark.parametrize("key", sorted(builder.LAYERS))
def test_each_layers_lock_is_current_hashed_and_leaves_the_runtime_sdk_out(key):
    layer = builder.LAYERS[key]
    lock = ROOT / layer.lock
    builder.check_lock(ROOT / layer.requirements, lock)  # pins every requirement at its version
    text = lock.read_text()
    entries = [entry for entry in text.split("\n") if entry and not entry.startswith((" ", "#"))]
    assert entries and all(entry.endswith("\\") for entry in entries), "every pin is followed by its hashes"
    pinned = builder.pins(lock)
    hashed = re.findall(r"^([a-z0-9-]+)==[^ ]+ \\\n(?:    --hash=sha256:[0-9a-f]{64}(?: \\)?\n)+", text, re.M)
    assert sorted(hashed) == sorted(pinned)
    assert not set(pinned) & set(builder.RUNTIME_DISTRIBUTIONS)


def test_a_lock_that_lags_its_requirements_or_pins_the_runtime_sdk_is_a_build_error(tmp_path):
    requirements, lock = tmp_path / "requirements.txt", tmp_path / "requirements.lock"
    requirements.write_text("pynamodb==6.1.0  # the model\nsix==1.17.0\n")
    lock.write_text("pynamodb==6.0.0 \\\n    --hash=sha256:" + "0" * 64 + "\nsix==1.17.0 \\\n")
    with pytest.raises(builder.BuildError, match=r"does not pin pynamodb==6\.1\.0 as requirements.txt does"):
        builder.check_lock(requirements, lock)
    lock.write_text("pynamodb==6.1.0 \\\nsix==1.17.0 \\\nbotocore==1.44.8 \\\n")
    with pytest.raises(builder.BuildError, match="pins botocore, which the Lambda runtime provides"):
        builder.check_lock(requirements, lock)
    with pytest.raises(builder.BuildError, match="not found: run `make lock`"):
        builder.check_lock(requirements, tmp_path / "absent.lock")


def test_the_lock_command_hashes_and_leaves_out_what_the_runtime_ships():
    command = builder.lock_command("deps")
    assert command[command.index("--output-file") + 1:] == ["requirements-lambda.lock", "requirements-lambda.txt"]
    assert "--generate-hashes" in command
    unsafe = [command[i + 1] for i, arg in enumerate(command) if arg == "--unsafe-package"]
    assert sorted(unsafe) == sorted(builder.RUNTIME_DISTRIBUTIONS) and "botocore" in unsafe


def _dist(target: Path, name: str, version: str, *requires: str) -> None:
    info = target / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
                                   + "".join(f"Requires-Dist: {r}\n" for r in requires))


def test_a_dependency_the_lock_lacks_is_found_for_the_runtimes_python(tmp_path):
    # GIVEN installed distributions whose metadata needs the runtime's botocore, one only before 3.11,
    # one they have, and one that is missing
    _dist(tmp_path, "pynamodb", "6.1.0", "botocore>=1.12.54", "typing-extensions>=4; python_version < '3.11'")
    _dist(tmp_path, "aws_lambda_powertools", "3.37.0", "jmespath<2,>=1.0.1", "typing_extensions>=4.11.0",
          "boto3; extra == 'aws-sdk'")
    _dist(tmp_path, "typing_extensions", "4.16.0")
    _dist(tmp_path, "aws-kinesis-agg", "1.2.3", "protobuf>=3.20", "requests; python_version >= '3.12'")
    # THEN only what is neither installed nor the runtime's, for the runtime's Python, is missing
    assert builder.missing_dependencies(tmp_path, "python3.12") == [
        "aws-kinesis-agg needs protobuf>=3.20", "aws-kinesis-agg needs requests; python_version >= \"3.12\""]
    assert builder.missing_dependencies(tmp_path, "python3.11") == ["aws-kinesis-agg needs protobuf>=3.20"]


def test_a_layer_that_would_shadow_the_runtimes_sdk_is_a_build_error(tmp_path, monkeypatch):
    # GIVEN pip putting botocore into the layer beside what the layer provides
    def install(command, **kwargs):
        target = Path(command[command.index("--target") + 1])
        for name in (*builder.LAYERS["deps"].provides, "botocore"):
            (target / name).mkdir(parents=True)
        return type("Done", (), {"returncode": 0, "stdout": "", "stderr": ""})()

    monkeypatch.setattr(builder.subprocess, "run", install)
    lock = tmp_path / "requirements-lambda.lock"
    lock.write_text("")
    with pytest.raises(builder.BuildError, match="would shadow the Lambda runtime's botocore"):
        builder.build_layer(tmp_path / "out", lock=lock)


def test_the_trimmed_pyarrow_still_writes_and_reads_the_archives_parquet(tmp_path):
    # GIVEN the installed pyarrow copied without what the arrow layer leaves out
    import shutil
    import subprocess
    import sys

    import pyarrow

    source = Path(pyarrow.__file__).parent
    target = tmp_path / "python" / "pyarrow"
    layer = builder.LAYERS["arrow"]
    for path in source.rglob("*"):
        relative = f"pyarrow/{path.relative_to(source).as_posix()}"
        if path.is_file() and "__pycache__" not in path.parts and not builder.excluded(relative, layer.exclude):
            (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / path.relative_to(source))
    assert not (target / "tests").exists() and not list(target.glob("libarrow_flight.so*"))
    # WHEN the archive's format module round-trips an invoice with it (isolated from the venv's copy)
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); sys.path.insert(1, sys.argv[2]); import pyarrow; "
             "assert pyarrow.__file__.startswith(sys.argv[1]), pyarrow.__file__; "
             "from consumers.archive.format import Delivered, tables_by_day, to_parquet, read_parquet, events_from_table; "
             "from tests.factories import event; e = event(); "
             "[t] = tables_by_day([Delivered(e, 's', '1', 0, 0.0)]).values(); "
             "[a] = events_from_table(read_parquet(to_parquet(t))); assert a.event.event_id == e.event_id; print('ok')")
    result = subprocess.run([sys.executable, "-I", "-c", probe, str(tmp_path / "python"), str(ROOT)], cwd=tmp_path,
                            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    # THEN it works: nothing it needs was left out
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
